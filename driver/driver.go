// Package driver wraps a database/sql driver so that every transaction,
// checked-out connection, result set and prepared statement it hands out
// is tracked, and those left open past a threshold are reported with the
// application's own file and line:
//
//	if err := driver.RegisterByName("sqlite+watch", "sqlite"); err != nil { ... }
//	db, err := sql.Open("sqlite+watch", "file:app.db")
//
// The wrapper is transparent: errors, the driver.ErrBadConn retry,
// TxOptions and the driver's optional interfaces behave as without it.
// All functions are safe for concurrent use. User guide: the README.
package driver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Errors returned by the registration functions, wrapped with detail;
// test with errors.Is.
var (
	ErrEmptyName     = errors.New("sqlwatch: empty driver name")
	ErrDuplicateName = errors.New("sqlwatch: driver name already registered")
	ErrNilDriver     = errors.New("sqlwatch: nil driver")
	ErrUnknownDriver = errors.New("sqlwatch: unknown driver")
	ErrInvalidOption = errors.New("sqlwatch: invalid option")
)

// Register wraps d and registers it with database/sql under name, so that
// sql.Open(name, dsn) opens pools through sqlwatch.
func Register(name string, d driver.Driver, opts ...Option) error {
	if name == "" {
		return ErrEmptyName
	}
	if d == nil {
		return ErrNilDriver
	}
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	return register(name, &wrappedDriver{inner: d, name: name, opts: o, grammar: grammarOf(d)})
}

// RegisterByName wraps the driver registered under inner ("mysql",
// "postgres", "pgx", "sqlite", ...) and registers the wrapper under name.
func RegisterByName(name, inner string, opts ...Option) error {
	if name == "" || inner == "" {
		return ErrEmptyName
	}
	d, err := lookup(inner)
	if err != nil {
		return err
	}
	return Register(name, d, opts...)
}

// lookup finds a registered driver. database/sql offers no lookup, so it
// opens a pool on an empty DSN (which connects to nothing) and asks it.
func lookup(name string) (driver.Driver, error) {
	found := false
	for _, n := range sql.Drivers() {
		if n == name {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%w %q (forgotten import?)", ErrUnknownDriver, name)
	}
	db, err := sql.Open(name, "")
	if err != nil {
		return nil, fmt.Errorf("sqlwatch: looking up driver %q: %w", name, err)
	}
	d := db.Driver()
	db.Close()
	if pd, ok := d.(*poolDriver); ok {
		d = pd.wrappedDriver
	}
	return d, nil
}

func register(name string, d driver.Driver) (err error) {
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("%w: %q", ErrDuplicateName, name)
		}
	}()
	for _, n := range sql.Drivers() {
		if n == name {
			return fmt.Errorf("%w: %q", ErrDuplicateName, name)
		}
	}
	sql.Register(name, d)
	return nil
}

// NewConnector wraps c for sql.OpenDB; DB.Close stops the tracking and
// closes c if it is an io.Closer.
func NewConnector(c driver.Connector, opts ...Option) (driver.Connector, error) {
	if c == nil {
		return nil, ErrNilDriver
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	wd := &wrappedDriver{inner: c.Driver(), opts: o}
	return wd.newConnector(c, connectorName(c))
}

// trackerOf returns the tracker of a pool opened through sqlwatch, or nil
// when db was not. It does not touch the pool.
func trackerOf(db *sql.DB) *track.Tracker {
	if db == nil {
		return nil
	}
	if pd, ok := db.Driver().(*poolDriver); ok {
		return pd.pool.tracker
	}
	return nil
}

// Unwrap returns the driver's own conn behind dc, a conn handed out by
// sqlwatch (or by a wrapper of sqlwatch's driver, through its Raw method), for
// use in sql.Conn.Raw: driver.Unwrap(dc).(*stdlib.Conn). Calls on it bypass
// sqlwatch. A value with no sqlwatch conn behind it is returned unchanged.
func Unwrap(dc any) any {
	c := dc
	for range 8 {
		r, ok := c.(interface{ Raw() driver.Conn })
		if !ok {
			break
		}
		if _, ours := c.(sqlwatchConn); ours {
			return r.Raw()
		}
		c = r.Raw()
	}
	return dc
}

// wrappedDriver is the driver registered with database/sql.
type wrappedDriver struct {
	inner   driver.Driver
	name    string
	opts    *options
	grammar dsnGrammar // how OpenConnector reads a pool's name from its DSN

	directOnce sync.Once
	direct     *pool
	directErr  error
}

var (
	_ driver.Driver        = (*wrappedDriver)(nil)
	_ driver.DriverContext = (*wrappedDriver)(nil)
)

// Open opens a connection outside any pool database/sql manages (sql.Open
// uses OpenConnector instead). Such connections share one tracker per
// wrapped driver.
func (d *wrappedDriver) Open(dsn string) (driver.Conn, error) {
	d.directOnce.Do(func() { d.direct, d.directErr = d.newPool(d.name + "-direct") })
	if d.directErr != nil {
		return nil, d.directErr
	}
	c, err := d.inner.Open(dsn)
	if err != nil {
		return nil, err
	}
	d.direct.tracker.NoteWrapperOpen(openedBy())
	_, dc := newConn(c, d.direct)
	return dc, nil
}

// OpenConnector is called once per sql.Open: it creates the pool's
// tracker.
func (d *wrappedDriver) OpenConnector(dsn string) (driver.Connector, error) {
	var c driver.Connector
	if dc, ok := d.inner.(driver.DriverContext); ok {
		var err error
		if c, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	} else {
		c = dsnConnector{dsn: dsn, d: d.inner}
	}
	return d.newConnector(c, nameFromDSN(d.grammar, dsn, d.name))
}

// dsnConnector mirrors database/sql's own, for drivers without
// DriverContext.
type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// poolDriver is what db.Driver() returns for a pool opened through
// sqlwatch: the wrapped driver plus the pool, so [trackerOf] can find it.
type poolDriver struct {
	*wrappedDriver
	pool *pool
}

// Tracker returns the pool's tracker; packages metrics and leak find it
// through db.Driver().
func (d *poolDriver) Tracker() *track.Tracker { return d.pool.tracker }

// Recorder returns the pool's metrics recorder.
func (d *poolDriver) Recorder() *record.Recorder { return d.pool.rec }

// Open opens a connection through db.Driver(): it is tracked by the
// pool's tracker, which DB.Close stops, rather than by a tracker of the
// driver's own that nothing would stop.
func (d *poolDriver) Open(dsn string) (driver.Conn, error) {
	c, err := d.inner.Open(dsn)
	if err != nil {
		return nil, err
	}
	d.pool.tracker.NoteWrapperOpen(openedBy())
	_, dc := newConn(c, d.pool)
	return dc, nil
}

// connectorName derives a pool name from the connector's driver package.
func connectorName(c driver.Connector) string {
	t := fmt.Sprintf("%T", c.Driver())
	t = strings.TrimLeft(t, "*")
	if i := strings.IndexByte(t, '.'); i > 0 {
		t = t[:i]
	}
	return t
}

var _ io.Closer = (*connector)(nil)
