package driver

import (
	"context"
	"database/sql/driver"
)

// A conn claims ExecerContext, QueryerContext and SessionResetter only
// when the driver's conn has them (see conn): one type per combination.

// Claimed only when the driver has them (see newConn).
var (
	_ driver.ExecerContext   = execer{}
	_ driver.QueryerContext  = queryer{}
	_ driver.SessionResetter = resetter{}
)

// The optional methods, mixed into the conn types below.
type (
	execer   struct{ *conn }
	queryer  struct{ *conn }
	resetter struct{ *conn }
)

func (c execer) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.execContext(ctx, query, args)
}

func (c queryer) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.queryContext(ctx, query, args)
}

func (c resetter) ResetSession(ctx context.Context) error { return c.resetSession(ctx) }

// The eight combinations of ExecerContext (E), QueryerContext (Q) and
// SessionResetter (R).
type (
	connE struct {
		*conn
		execer
	}
	connQ struct {
		*conn
		queryer
	}
	connEQ struct {
		*conn
		execer
		queryer
	}
	connR struct {
		*conn
		resetter
	}
	connER struct {
		*conn
		execer
		resetter
	}
	connQR struct {
		*conn
		queryer
		resetter
	}
	connEQR struct {
		*conn
		execer
		queryer
		resetter
	}
)

// claiming returns c as the conn type that claims the optional
// interfaces c's driver conn has (c.ec, c.qc and c.rs set by newConn).
func (c *conn) claiming() driver.Conn {
	hasR := c.rs != nil
	e, q := c.ec != nil, c.qc != nil
	switch {
	case e && q && hasR:
		return &connEQR{c, execer{c}, queryer{c}, resetter{c}}
	case e && q:
		return &connEQ{c, execer{c}, queryer{c}}
	case e && hasR:
		return &connER{c, execer{c}, resetter{c}}
	case q && hasR:
		return &connQR{c, queryer{c}, resetter{c}}
	case e:
		return &connE{c, execer{c}}
	case q:
		return &connQ{c, queryer{c}}
	case hasR:
		return &connR{c, resetter{c}}
	}
	return c
}
