package driver

import (
	"context"
	"database/sql/driver"

	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Every stmt claims these; when the driver's stmt lacks one, the method
// does what database/sql does without it.
var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
	//lint:ignore SA1019 compile-time check of the claim stmtCC makes
	_ driver.ColumnConverter = stmtCC{} // only when the driver's stmt has it
)

// stmt wraps a prepared statement, tracked from Prepare to Close.
type stmt struct {
	inner driver.Stmt
	c     *conn
	query string
	res   *track.Resource
	ctx   context.Context // as returned by the interceptor's ConnPrepareContext

	sec driver.StmtExecContext
	sqc driver.StmtQueryContext
	// nvc is the stmt's NamedValueChecker or, failing that, the conn's:
	// database/sql falls back to the conn's when the stmt has none.
	nvc driver.NamedValueChecker
}

// stmtCC is a stmt whose driver stmt has a ColumnConverter.
type stmtCC struct {
	*stmt
	//lint:ignore SA1019 claimed only when the driver's stmt has it, for database/sql's argument conversion
	cc driver.ColumnConverter
}

func (s stmtCC) ColumnConverter(idx int) driver.ValueConverter { return s.cc.ColumnConverter(idx) }

func newStmt(si driver.Stmt, c *conn, query string, ctx context.Context, like *track.Resource, at int64) driver.Stmt {
	s := &stmt{inner: si, c: c, query: query, ctx: ctx, res: c.p.tracker.OpenLike(track.KindStmt, track.Opening{Like: like, At: at, Query: query}, 2)}
	if sec, ok := si.(driver.StmtExecContext); ok {
		s.sec = sec
	} else {
		s.sec = legacyStmt{si}
	}
	if sqc, ok := si.(driver.StmtQueryContext); ok {
		s.sqc = sqc
	} else {
		s.sqc = legacyStmt{si}
	}
	if nvc, ok := si.(driver.NamedValueChecker); ok {
		s.nvc = nvc
	} else {
		s.nvc = c.nvc
	}
	if c.openStmts == nil {
		c.openStmts = map[*stmt]struct{}{}
	}
	c.openStmts[s] = struct{}{}
	//lint:ignore SA1019 database/sql still asks a stmt for ColumnConverter: the wrapper passes the driver's on
	if cc, ok := si.(driver.ColumnConverter); ok {
		return stmtCC{s, cc}
	}
	return s
}

// forget stops tracking s (database/sql serializes it with the conn's
// other calls). It may run more than once: only the first does anything.
func (s *stmt) forget() {
	delete(s.c.openStmts, s)
	s.c.p.tracker.Close(s.res)
	s.res = nil // recycled
}

// Close closes the driver's statement and stops tracking s, even when
// the interceptor's StmtClose panics: database/sql marks the statement
// closed before calling Close and never calls it again, so a statement
// still tracked would stay open until its conn closes. The panic goes on
// to the application.
func (s *stmt) Close() error {
	defer s.forget()
	if ic := s.c.p.ic; ic != nil {
		return ic.StmtClose(s.ctx, s.inner)
	}
	return s.inner.Close()
}

func (s *stmt) NumInput() int { return s.inner.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valueToNamedValue(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valueToNamedValue(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.checkout()
	if s.c.attrsDue {
		s.c.takeAttrs(ctx)
	}
	s.c.note(s.query)
	var (
		r   driver.Result
		err error
	)
	start := s.c.p.begin()
	if ic := s.c.p.ic; ic != nil {
		r, err = ic.StmtExecContext(ctx, s.sec, s.query, args)
		r = wrapResult(r, ic)
	} else {
		r, err = s.sec.ExecContext(ctx, args)
	}
	end := s.c.p.done(record.OpExec, start, err)
	s.c.check(ctx, s.query)
	if s.c.mayBegin(s.query) {
		s.c.sqlText(ctx, s.query, err)
	}
	if err != nil {
		// Before used: failed reports how long the conn sat idle.
		s.c.failed(ctx, err, s.query)
	}
	s.c.used(end)
	return r, err
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	fresh := s.c.checkout()
	s.c.note(s.query)
	var (
		ri  driver.Rows
		err error
	)
	start := s.c.p.begin()
	if ic := s.c.p.ic; ic != nil {
		ctx, ri, err = ic.StmtQueryContext(ctx, s.sqc, s.query, args)
	} else {
		ri, err = s.sqc.QueryContext(ctx, args)
	}
	end := s.c.p.done(record.OpQuery, start, err)
	s.c.check(ctx, s.query)
	if s.c.mayBegin(s.query) {
		s.c.sqlText(ctx, s.query, err)
	}
	if err != nil {
		if s.c.attrsDue {
			s.c.takeAttrs(ctx)
		}
		// Before used: failed reports how long the conn sat idle.
		s.c.failed(ctx, err, s.query)
		s.c.used(end)
		return nil, err
	}
	s.c.used(end)
	return newRows(ri, s.c, ctx, fresh, track.Opening{At: end, Query: s.query}), nil
}

// CheckNamedValue defers to the stmt's checker, else the conn's, else
// returns driver.ErrSkip — the order database/sql itself follows.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if s.nvc != nil {
		return s.nvc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// legacyStmt does what database/sql does for a stmt without the context
// methods.
type legacyStmt struct{ si driver.Stmt }

func (l legacyStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	//lint:ignore SA1019 the driver has nothing else
	return l.si.Exec(dargs)
}

func (l legacyStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	//lint:ignore SA1019 the driver has nothing else
	return l.si.Query(dargs)
}
