package driver

import (
	"context"
	"database/sql/driver"
	"io"
	"log/slog"
	"reflect"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Rows claim every optional interface; when the driver's rows lack one,
// the method returns what database/sql assumes without it.
var (
	_ driver.Rows                           = (*rows)(nil)
	_ driver.RowsNextResultSet              = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
)

// rows wraps a result set, tracked from the query to Close.
type rows struct {
	inner driver.Rows
	p     *pool
	res   *track.Resource
	c     *conn
	ctx   context.Context // as returned by the interceptor

	// The conn's open rows, oldest first: a statement over open rows
	// names the oldest (see conn.check), whichever closed in between.
	older, newer *rows
}

// newRows tracks rows opened by the same call as the checkout like (nil
// when the conn was checked out before), as o describes (the query, the
// clock reading that ended it, and whether to note it on the checkout);
// newRows fills in o's Into, Like and Holder. The conn's spare rows and
// resource are used when free, so that a conn with one result set open at
// a time (the common case) allocates no rows wrapper and takes no
// resource from the pool.
func newRows(ri driver.Rows, c *conn, ctx context.Context, like *track.Resource, o track.Opening) *rows {
	p := c.p
	var r *rows
	var into *track.Resource
	if c.spareBusy {
		r = new(rows)
	} else {
		c.spareBusy = true
		r, into = &c.spareRows, &c.spareRes
	}
	o.Into, o.Like, o.Holder = into, like, c.res
	if p.tracker.HasContextAttrs() {
		o.Attrs = rowsAttrs(c, ctx)
	}
	res := p.tracker.OpenLike(track.KindRows, o, 3)
	*r = rows{inner: ri, p: p, c: c, ctx: ctx, res: res, older: c.newest}
	if c.newest != nil {
		c.newest.newer = r
	} else {
		c.oldest = r
	}
	c.newest = r
	c.openRows++
	return r
}

// rowsAttrs are the context attributes of rows (WithContextAttrs): those
// of the conn's tx when the rows are its (taken once, at BeginTx), else
// the query's context's, which are the checkout's too when the query is
// its first call with a context (f is called once for both).
func rowsAttrs(c *conn, ctx context.Context) []slog.Attr {
	if t := c.tx; t != nil && t.res != nil {
		return t.res.Attrs()
	}
	if c.attrsDue {
		return c.takeAttrs(ctx)
	}
	return c.p.tracker.ContextAttrs(ctx)
}

func (r *rows) Columns() []string { return r.inner.Columns() }

func (r *rows) Close() error {
	var err error
	if ic := r.p.ic; ic != nil {
		err = ic.RowsClose(r.ctx, r.inner)
	} else {
		err = r.inner.Close()
	}
	if r.c != nil && r.ctx.Err() != nil {
		r.c.explained = true // rows abandoned at their context's end: see conn.failed
	}
	if c := r.c; c != nil {
		// database/sql closes rows under the conn's lock, and never
		// calls them again once closed: the spare is free.
		c.openRows--
		if r.older != nil {
			r.older.newer = r.newer
		} else {
			c.oldest = r.newer
		}
		if r.newer != nil {
			r.newer.older = r.older
		} else {
			c.newest = r.older
		}
		r.older, r.newer, r.c = nil, nil, nil
		if r == &c.spareRows {
			c.spareBusy = false
		}
	}
	r.p.tracker.Close(r.res)
	r.res = nil // recycled
	return err
}

func (r *rows) Next(dest []driver.Value) error {
	if ic := r.p.ic; ic != nil {
		return ic.RowsNext(r.ctx, r.inner, dest)
	}
	return r.inner.Next(dest)
}

func (r *rows) HasNextResultSet() bool {
	if n, ok := r.inner.(driver.RowsNextResultSet); ok {
		return n.HasNextResultSet()
	}
	return false
}

func (r *rows) NextResultSet() error {
	if n, ok := r.inner.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return io.EOF
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if c, ok := r.inner.(driver.RowsColumnTypeScanType); ok {
		return c.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if c, ok := r.inner.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return c.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	if c, ok := r.inner.(driver.RowsColumnTypeLength); ok {
		return c.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if c, ok := r.inner.(driver.RowsColumnTypeNullable); ok {
		return c.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if c, ok := r.inner.(driver.RowsColumnTypePrecisionScale); ok {
		return c.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
