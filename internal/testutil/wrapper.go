package testutil

import (
	"context"
	"database/sql/driver"
)

// Wrapper is a driver wrapper opened over a pool's driver (the Driver of
// a *sql.DB opened through sqlwatch), as otelsql or sqlhooks are: its
// conns sit between database/sql and sqlwatch's. With PassValid false its
// conn has no IsValid or ResetSession, like uptrace's otelsql v0.3.2, so
// sqlwatch never sees a conn go back to the pool. With Connector set, it
// opens conns through the driver's OpenConnector, otherwise through Open.
type Wrapper struct {
	Driver    driver.Driver
	DSN       string
	PassValid bool
	Connector bool
}

// Open returns a connector for sql.OpenDB.
func (w Wrapper) Open() (driver.Connector, error) {
	if w.Connector {
		c, err := w.Driver.(driver.DriverContext).OpenConnector(w.DSN)
		if err != nil {
			return nil, err
		}
		return wrapConnector{w, c}, nil
	}
	return wrapConnector{w, nil}, nil
}

type wrapConnector struct {
	w     Wrapper
	inner driver.Connector
}

func (c wrapConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var (
		ci  driver.Conn
		err error
	)
	if c.inner != nil {
		ci, err = c.inner.Connect(ctx)
	} else {
		ci, err = c.w.Driver.Open(c.w.DSN)
	}
	if err != nil {
		return nil, err
	}
	if c.w.PassValid {
		return validConn{wrapConn{ci}}, nil
	}
	return wrapConn{ci}, nil
}

func (c wrapConnector) Driver() driver.Driver { return c.w.Driver }

// wrapConn passes on statements and transactions, not IsValid.
type wrapConn struct{ inner driver.Conn }

func (c wrapConn) Prepare(q string) (driver.Stmt, error) { return c.inner.Prepare(q) }
func (c wrapConn) Close() error                          { return c.inner.Close() }

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c wrapConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c wrapConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(ctx, o)
}

func (c wrapConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c wrapConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := c.inner.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, q, args)
	}
	return nil, driver.ErrSkip
}

func (c wrapConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if e, ok := c.inner.(driver.QueryerContext); ok {
		return e.QueryContext(ctx, q, args)
	}
	return nil, driver.ErrSkip
}

func (c wrapConn) CheckNamedValue(nv *driver.NamedValue) error {
	if v, ok := c.inner.(driver.NamedValueChecker); ok {
		return v.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// validConn passes on IsValid and ResetSession too.
type validConn struct{ wrapConn }

func (c validConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c validConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}
