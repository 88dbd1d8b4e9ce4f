// Package fakedb is a small, deterministic, in-memory database/sql/driver
// implementation used by sqlwatch's conformance suite.
//
// The conformance suite must show that an application sees exactly the same
// behaviour through database/sql with and without the sqlwatch wrapper. Much
// of database/sql's behaviour depends on which optional driver interfaces a
// driver implements (ExecerContext vs. the prepare fallback, SessionResetter
// and Validator, NamedValueChecker and ColumnConverter precedence,
// RowsNextResultSet, the RowsColumnType* family, ...). fakedb therefore offers
// several [Profile]s, each built from distinct concrete types so that type
// assertions on its values see exactly the documented set of interfaces and
// nothing more:
//
//   - [Full] implements every optional interface sqlwatch cares about.
//   - [Legacy] implements only the required methods of driver.Driver,
//     driver.Conn, driver.Stmt and driver.Rows.
//   - [ResetterOnly] is Full without driver.Validator (the shape of pgx's
//     stdlib conn).
//
// # Query language
//
// Queries are matched as plain strings (case-sensitive, fields separated by
// single spaces). The language is identical in every profile; Legacy reaches
// it through Prepare followed by Stmt.Exec/Stmt.Query.
//
//	SELECT ROWS n          n rows with columns "id" (int64 i, 1-based) and
//	                       "name" (string "row<i>")
//	SELECT ARGS            one row with columns "a1".."aN" holding the
//	                       arguments exactly as the driver received them
//	MULTI                  two result sets: SELECT ROWS 1's, then one row with
//	                       column "second" = int64(2) (Legacy: first set only)
//	ERROR <code> <msg...>  fails with *Error{Code: code, Message: msg}
//	BADCONN                fails with driver.ErrBadConn and marks the conn broken
//	BADCONN ONCE           the first execution per Driver behaves like BADCONN,
//	                       later ones succeed
//	SLEEP <ms>             waits ms milliseconds, or until the context is done
//	                       (returning ctx.Err())
//	anything else          Exec: LastInsertId 42, RowsAffected = number of
//	                       args; Query: zero rows, one column "ok"
//
// A recognised keyword with a malformed number ("SELECT ROWS x", "SLEEP -1")
// or "ERROR" without a code fails with a plain error. Prepare always succeeds;
// errors surface when the statement is executed. Stmt.NumInput returns -1.
//
// # Conversions
//
// The Full and ResetterOnly conns implement driver.NamedValueChecker and turn
// a [Point] into the string "conn:(X,Y)"; their statements implement
// driver.NamedValueChecker (turning a Point into "stmt:(X,Y)") and
// driver.ColumnConverter (turning a [Celsius] into "<v>C"). Everything else is
// passed on with driver.ErrSkip or to driver.DefaultParameterConverter, so the
// suite can observe database/sql's precedence rules with SELECT ARGS.
//
// # Observation
//
// A [Driver] counts what database/sql does to it with atomic counters. Each
// counter counts calls of the corresponding driver method, whatever their
// outcome, except Opens (conns created) and OpenConns (conns created and not
// yet closed).
package fakedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Profile selects which optional database/sql/driver interfaces the values
// produced by a [Driver] implement.
type Profile int

const (
	// Full: driver implements driver.Driver and driver.DriverContext; its
	// Connector implements io.Closer (counts closes).
	// Conn implements driver.Conn, Pinger, ExecerContext, QueryerContext,
	// ConnPrepareContext, ConnBeginTx, SessionResetter, Validator,
	// NamedValueChecker.
	// Stmt implements driver.Stmt, StmtExecContext, StmtQueryContext,
	// NamedValueChecker, ColumnConverter.
	// Rows implement driver.Rows, RowsNextResultSet, RowsColumnTypeScanType,
	// RowsColumnTypeDatabaseTypeName, RowsColumnTypeLength,
	// RowsColumnTypeNullable, RowsColumnTypePrecisionScale.
	Full Profile = iota
	// Legacy: only the required methods: Driver.Open; Conn
	// Prepare/Close/Begin; Stmt Close/NumInput/Exec/Query; Rows
	// Columns/Close/Next. No Execer, no Queryer, no context methods, nothing
	// optional. Result is a plain driver.Result. Its Connector (see
	// [Driver.Connector]) implements only driver.Connector, like the one
	// database/sql builds for a driver without DriverContext.
	Legacy
	// ResetterOnly: like Full, but the Conn does NOT implement
	// driver.Validator (the shape of pgx's stdlib conn: SessionResetter
	// without Validator).
	ResetterOnly
	// LegacyExecer: like Legacy, but the Conn also implements the
	// deprecated driver.Execer and driver.Queryer (Exec and Query without
	// a context), which database/sql still calls before it prepares
	// (ctxutil.go); [Driver.Directs] counts those calls.
	LegacyExecer
)

// String returns the profile's name.
func (p Profile) String() string {
	switch p {
	case Full:
		return "Full"
	case Legacy:
		return "Legacy"
	case ResetterOnly:
		return "ResetterOnly"
	case LegacyExecer:
		return "LegacyExecer"
	}
	return "Profile(" + strconv.Itoa(int(p)) + ")"
}

// Point is an argument type handled by the NamedValueCheckers of the Full
// and ResetterOnly profiles: the conn turns it into "conn:(X,Y)", the
// statement into "stmt:(X,Y)". database/sql's default converter rejects it.
type Point struct{ X, Y int }

// Celsius is an argument type handled by the ColumnConverter of the Full and
// ResetterOnly statements, which turns it into the string "<v>C" (fmt %g).
type Celsius float64

// Error is the error returned for an "ERROR <code> <message...>" query.
type Error struct {
	Code    string
	Message string
}

// Error returns "fakedb: <code>: <message>".
func (e *Error) Error() string { return "fakedb: " + e.Code + ": " + e.Message }

// RawConn is implemented by the conn of every profile, so that a test can
// recognise it, e.g. inside sql.Conn.Raw.
type RawConn interface {
	// FakeConnID returns the conn's identifier: unique across all Drivers
	// of the process and increasing in creation order.
	FakeConnID() int64
}

var (
	errConnClosed = errors.New("fakedb: conn closed")
	errStmtClosed = errors.New("fakedb: statement closed")
	errTxDone     = errors.New("fakedb: transaction already committed or rolled back")
)

// lastConnID numbers conns process-wide.
var lastConnID atomic.Int64

// Driver is the handle of one fake database: it produces the driver values of
// its profile ([Driver.Driver], [Driver.Connector]) and observes what is done
// with them. *Driver itself is not a driver.Driver, since no single type can
// have the method sets of every profile. A Driver is safe for concurrent use.
type Driver struct {
	profile Profile
	drv     driver.Driver

	opens           atomic.Int64
	openConns       atomic.Int64
	connCloses      atomic.Int64
	resetSessions   atomic.Int64
	isValids        atomic.Int64
	begins          atomic.Int64
	commits         atomic.Int64
	rollbacks       atomic.Int64
	prepares        atomic.Int64
	stmtCloses      atomic.Int64
	rowsCloses      atomic.Int64
	directs         atomic.Int64
	connectorCloses atomic.Int64

	badConnOnceFired atomic.Bool

	mu     sync.Mutex
	lastTx driver.TxOptions
}

// New returns a new fake database with profile p. It panics on an unknown
// profile.
func New(p Profile) *Driver {
	d := &Driver{profile: p}
	switch p {
	case Full, ResetterOnly:
		d.drv = &fullDriver{d: d}
	case Legacy, LegacyExecer:
		d.drv = &legacyDriver{d: d}
	default:
		panic("fakedb: unknown profile " + p.String())
	}
	return d
}

// Profile returns the profile d was created with.
func (d *Driver) Profile() Profile { return d.profile }

// Driver returns the driver.Driver value of d's profile, suitable for
// sql.Register. For Full and ResetterOnly it also implements
// driver.DriverContext; for Legacy it implements only driver.Driver. The same
// value is returned on every call. The DSN is ignored.
func (d *Driver) Driver() driver.Driver { return d.drv }

// Connector returns a new driver.Connector for d, suitable for sql.OpenDB.
// For Full and ResetterOnly it honours the context passed to Connect and
// implements io.Closer (counted by ConnectorCloses); for Legacy it implements
// only driver.Connector and calls the legacy driver's Open, like the
// connector database/sql builds for drivers without DriverContext.
func (d *Driver) Connector() driver.Connector {
	if fd, ok := d.drv.(*fullDriver); ok {
		return &fullConnector{d: d, drv: fd}
	}
	return &legacyConnector{d: d, drv: d.drv.(*legacyDriver)}
}

// OpenDB is shorthand for sql.OpenDB(d.Connector()).
func (d *Driver) OpenDB() *sql.DB { return sql.OpenDB(d.Connector()) }

// Opens returns the number of conns created by Connect or Open.
func (d *Driver) Opens() int64 { return d.opens.Load() }

// ConnCloses returns the number of calls to Conn.Close.
func (d *Driver) ConnCloses() int64 { return d.connCloses.Load() }

// OpenConns returns the number of conns created and not yet closed.
func (d *Driver) OpenConns() int64 { return d.openConns.Load() }

// ResetSessions returns the number of calls to Conn.ResetSession.
func (d *Driver) ResetSessions() int64 { return d.resetSessions.Load() }

// IsValids returns the number of calls to Conn.IsValid.
func (d *Driver) IsValids() int64 { return d.isValids.Load() }

// Begins returns the number of calls to Conn.Begin and Conn.BeginTx,
// including rejected ones.
func (d *Driver) Begins() int64 { return d.begins.Load() }

// Commits returns the number of calls to Tx.Commit.
func (d *Driver) Commits() int64 { return d.commits.Load() }

// Rollbacks returns the number of calls to Tx.Rollback.
func (d *Driver) Rollbacks() int64 { return d.rollbacks.Load() }

// Prepares returns the number of calls to Conn.Prepare and
// Conn.PrepareContext.
func (d *Driver) Prepares() int64 { return d.prepares.Load() }

// StmtCloses returns the number of calls to Stmt.Close.
func (d *Driver) StmtCloses() int64 { return d.stmtCloses.Load() }

// RowsCloses returns the number of calls to Rows.Close.
func (d *Driver) RowsCloses() int64 { return d.rowsCloses.Load() }

// Directs counts the calls of a LegacyExecer conn's Exec and Query.
func (d *Driver) Directs() int64 { return d.directs.Load() }

// ConnectorCloses returns the number of calls to the Close method of d's
// connectors (Full and ResetterOnly only).
func (d *Driver) ConnectorCloses() int64 { return d.connectorCloses.Load() }

// LastTxOptions returns the options of the most recent Begin or BeginTx call,
// recorded even when BeginTx rejected them. Legacy's Begin records the zero
// value.
func (d *Driver) LastTxOptions() driver.TxOptions {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastTx
}

func (d *Driver) recordBegin(opts driver.TxOptions) {
	d.begins.Add(1)
	d.mu.Lock()
	d.lastTx = opts
	d.mu.Unlock()
}

func (d *Driver) newConn() driver.Conn {
	core := &connCore{d: d, id: lastConnID.Add(1)}
	d.opens.Add(1)
	d.openConns.Add(1)
	switch d.profile {
	case Full:
		return &fullConn{resetterConn{core}}
	case ResetterOnly:
		return &resetterConn{core}
	case LegacyExecer:
		return &legacyExecerConn{legacyConn{core}}
	default:
		return &legacyConn{core}
	}
}

// ---- drivers and connectors ----

// fullDriver is the driver of the Full and ResetterOnly profiles:
// driver.Driver and driver.DriverContext.
type fullDriver struct{ d *Driver }

func (fd *fullDriver) Open(name string) (driver.Conn, error) { return fd.d.newConn(), nil }

func (fd *fullDriver) OpenConnector(name string) (driver.Connector, error) {
	return &fullConnector{d: fd.d, drv: fd}, nil
}

// legacyDriver is the driver of the Legacy profile: driver.Driver only.
type legacyDriver struct{ d *Driver }

func (ld *legacyDriver) Open(name string) (driver.Conn, error) { return ld.d.newConn(), nil }

// fullConnector: driver.Connector and io.Closer.
type fullConnector struct {
	d   *Driver
	drv *fullDriver
}

func (c *fullConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.d.newConn(), nil
}

func (c *fullConnector) Driver() driver.Driver { return c.drv }

func (c *fullConnector) Close() error {
	c.d.connectorCloses.Add(1)
	return nil
}

// legacyConnector: driver.Connector only, mirroring database/sql's
// dsnConnector (the context is ignored).
type legacyConnector struct {
	d   *Driver
	drv *legacyDriver
}

func (c *legacyConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open("") }

func (c *legacyConnector) Driver() driver.Driver { return c.drv }

// ---- conns ----

// connCore holds the state shared by every profile's conn. Its exported
// methods (FakeConnID, Close) are promoted into every conn type.
type connCore struct {
	d      *Driver
	id     int64
	closed atomic.Bool
	broken atomic.Bool
}

func (c *connCore) FakeConnID() int64 { return c.id }

func (c *connCore) Close() error {
	c.d.connCloses.Add(1)
	if c.closed.CompareAndSwap(false, true) {
		c.d.openConns.Add(-1)
	}
	return nil
}

func (c *connCore) usable() error {
	if c.closed.Load() {
		return errConnClosed
	}
	if c.broken.Load() {
		return driver.ErrBadConn
	}
	return nil
}

func (c *connCore) prepare(query string) *stmtCore {
	c.d.prepares.Add(1)
	return &stmtCore{c: c, query: query}
}

func (c *connCore) begin(opts driver.TxOptions) (driver.Tx, error) {
	c.d.recordBegin(opts)
	if err := c.usable(); err != nil {
		return nil, err
	}
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault, sql.LevelReadCommitted, sql.LevelSerializable:
	default:
		return nil, fmt.Errorf("fakedb: isolation level %d not supported", opts.Isolation)
	}
	return &tx{c: c}, nil
}

// resultSet is one result set of a query.
type resultSet struct {
	cols []string
	rows [][]driver.Value
}

var okSet = []resultSet{{cols: []string{"ok"}}}

func selectRows(n int) resultSet {
	rs := resultSet{cols: []string{"id", "name"}, rows: make([][]driver.Value, n)}
	for i := range n {
		rs.rows[i] = []driver.Value{int64(i + 1), "row" + strconv.Itoa(i+1)}
	}
	return rs
}

// execute interprets query and returns its result sets.
func (c *connCore) execute(ctx context.Context, query string, args []driver.NamedValue) ([]resultSet, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	f := strings.Split(query, " ")
	switch {
	case query == "BADCONN":
		c.broken.Store(true)
		return nil, driver.ErrBadConn
	case query == "BADCONN ONCE":
		if c.d.badConnOnceFired.CompareAndSwap(false, true) {
			c.broken.Store(true)
			return nil, driver.ErrBadConn
		}
		return okSet, nil
	case f[0] == "ERROR":
		if len(f) < 2 || f[1] == "" {
			return nil, fmt.Errorf("fakedb: malformed query %q", query)
		}
		return nil, &Error{Code: f[1], Message: strings.Join(f[2:], " ")}
	case f[0] == "SLEEP":
		ms, err := number(f, 1, query)
		if err != nil {
			return nil, err
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return okSet, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case len(f) >= 2 && f[0] == "SELECT" && f[1] == "ROWS":
		n, err := number(f, 2, query)
		if err != nil {
			return nil, err
		}
		return []resultSet{selectRows(n)}, nil
	case query == "SELECT ARGS":
		rs := resultSet{cols: make([]string, len(args)), rows: [][]driver.Value{make([]driver.Value, len(args))}}
		for i, a := range args {
			rs.cols[i] = "a" + strconv.Itoa(i+1)
			v := a.Value
			if b, ok := v.([]byte); ok {
				v = append([]byte(nil), b...)
			}
			rs.rows[0][i] = v
		}
		return []resultSet{rs}, nil
	case query == "MULTI":
		return []resultSet{
			selectRows(1),
			{cols: []string{"second"}, rows: [][]driver.Value{{int64(2)}}},
		}, nil
	}
	return okSet, nil
}

// number parses f[i] as the last, non-negative integer field of query.
func number(f []string, i int, query string) (int, error) {
	if len(f) != i+1 {
		return 0, fmt.Errorf("fakedb: malformed query %q", query)
	}
	n, err := strconv.Atoi(f[i])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("fakedb: malformed query %q", query)
	}
	return n, nil
}

func (c *connCore) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if _, err := c.execute(ctx, query, args); err != nil {
		return nil, err
	}
	return result{rowsAffected: int64(len(args))}, nil
}

func (c *connCore) query(ctx context.Context, query string, args []driver.NamedValue) (*rowsCore, error) {
	sets, err := c.execute(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return &rowsCore{d: c.d, sets: sets}, nil
}

func convertPoint(nv *driver.NamedValue, prefix string) error {
	p, ok := nv.Value.(Point)
	if !ok {
		return driver.ErrSkip
	}
	nv.Value = fmt.Sprintf("%s:(%d,%d)", prefix, p.X, p.Y)
	return nil
}

// legacyConn: driver.Conn only (plus RawConn).
type legacyConn struct{ *connCore }

func (c *legacyConn) Prepare(query string) (driver.Stmt, error) {
	return &legacyStmt{c.prepare(query)}, nil
}

func (c *legacyConn) Begin() (driver.Tx, error) { return c.begin(driver.TxOptions{}) }

// legacyExecerConn: the LegacyExecer conn, legacyConn plus Exec and
// Query without a context.
type legacyExecerConn struct{ legacyConn }

func (c *legacyExecerConn) Exec(query string, args []driver.Value) (driver.Result, error) {
	c.d.directs.Add(1)
	return c.exec(context.Background(), query, named(args))
}

func (c *legacyExecerConn) Query(query string, args []driver.Value) (driver.Rows, error) {
	c.d.directs.Add(1)
	r, err := c.query(context.Background(), query, named(args))
	if err != nil {
		return nil, err
	}
	r.sets = r.sets[:1] // legacy rows have a single result set
	return &legacyRows{r}, nil
}

// resetterConn is the ResetterOnly conn: everything of Full but Validator.
type resetterConn struct{ *connCore }

func (c *resetterConn) Prepare(query string) (driver.Stmt, error) {
	return &fullStmt{c.prepare(query)}, nil
}

func (c *resetterConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &fullStmt{c.prepare(query)}, nil
}

// Begin is required by driver.Conn; database/sql uses BeginTx.
func (c *resetterConn) Begin() (driver.Tx, error) { return c.begin(driver.TxOptions{}) }

func (c *resetterConn) BeginTx(_ context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.begin(opts)
}

func (c *resetterConn) Ping(ctx context.Context) error {
	if err := c.usable(); err != nil {
		return err
	}
	return ctx.Err()
}

func (c *resetterConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.exec(ctx, query, args)
}

func (c *resetterConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := c.query(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return &fullRows{r}, nil
}

func (c *resetterConn) ResetSession(context.Context) error {
	c.d.resetSessions.Add(1)
	if c.closed.Load() || c.broken.Load() {
		return driver.ErrBadConn
	}
	return nil
}

// CheckNamedValue turns a Point into "conn:(X,Y)" and skips everything else.
func (c *resetterConn) CheckNamedValue(nv *driver.NamedValue) error {
	return convertPoint(nv, "conn")
}

// fullConn is the Full conn: resetterConn plus driver.Validator.
type fullConn struct{ resetterConn }

func (c *fullConn) IsValid() bool {
	c.d.isValids.Add(1)
	return !c.closed.Load() && !c.broken.Load()
}

// ---- transactions and results ----

type tx struct {
	c    *connCore
	done atomic.Bool
}

func (t *tx) finish() error {
	if !t.done.CompareAndSwap(false, true) {
		return errTxDone
	}
	if t.c.closed.Load() {
		return errConnClosed
	}
	return nil
}

func (t *tx) Commit() error {
	t.c.d.commits.Add(1)
	return t.finish()
}

func (t *tx) Rollback() error {
	t.c.d.rollbacks.Add(1)
	return t.finish()
}

// result is a plain driver.Result.
type result struct{ rowsAffected int64 }

func (r result) LastInsertId() (int64, error) { return 42, nil }
func (r result) RowsAffected() (int64, error) { return r.rowsAffected, nil }

// ---- statements ----

// stmtCore holds the state shared by every statement type; Close and
// NumInput are promoted.
type stmtCore struct {
	c      *connCore
	query  string
	closed atomic.Bool
}

func (s *stmtCore) Close() error {
	s.c.d.stmtCloses.Add(1)
	s.closed.Store(true)
	return nil
}

func (s *stmtCore) NumInput() int { return -1 }

func (s *stmtCore) exec(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.closed.Load() {
		return nil, errStmtClosed
	}
	return s.c.exec(ctx, s.query, args)
}

func (s *stmtCore) queryRows(ctx context.Context, args []driver.NamedValue) (*rowsCore, error) {
	if s.closed.Load() {
		return nil, errStmtClosed
	}
	return s.c.query(ctx, s.query, args)
}

func named(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return nv
}

// legacyStmt: driver.Stmt only.
type legacyStmt struct{ *stmtCore }

func (s *legacyStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.exec(context.Background(), named(args))
}

func (s *legacyStmt) Query(args []driver.Value) (driver.Rows, error) {
	r, err := s.queryRows(context.Background(), named(args))
	if err != nil {
		return nil, err
	}
	// Legacy rows have a single result set.
	r.sets = r.sets[:1]
	return &legacyRows{r}, nil
}

// fullStmt is the statement of Full and ResetterOnly.
type fullStmt struct{ *stmtCore }

func (s *fullStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.exec(context.Background(), named(args))
}

func (s *fullStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *fullStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.exec(ctx, args)
}

func (s *fullStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.queryRows(ctx, args)
	if err != nil {
		return nil, err
	}
	return &fullRows{r}, nil
}

// CheckNamedValue turns a Point into "stmt:(X,Y)" and skips everything else.
func (s *fullStmt) CheckNamedValue(nv *driver.NamedValue) error {
	return convertPoint(nv, "stmt")
}

// ColumnConverter returns a converter that turns a Celsius into "<v>C" and
// hands everything else to driver.DefaultParameterConverter.
func (s *fullStmt) ColumnConverter(int) driver.ValueConverter { return celsiusConverter{} }

type celsiusConverter struct{}

func (celsiusConverter) ConvertValue(v any) (driver.Value, error) {
	if c, ok := v.(Celsius); ok {
		return fmt.Sprintf("%gC", float64(c)), nil
	}
	return driver.DefaultParameterConverter.ConvertValue(v)
}

// ---- rows ----

// rowsCore holds the state shared by every rows type; Columns, Close and
// Next are promoted.
type rowsCore struct {
	d      *Driver
	sets   []resultSet
	set    int // current result set
	pos    int // next row in the current set
	closed bool
}

func (r *rowsCore) Columns() []string {
	return append([]string(nil), r.sets[r.set].cols...)
}

func (r *rowsCore) Close() error {
	r.d.rowsCloses.Add(1)
	r.closed = true
	return nil
}

func (r *rowsCore) Next(dest []driver.Value) error {
	if r.closed {
		return errors.New("fakedb: rows closed")
	}
	rs := r.sets[r.set]
	if r.pos >= len(rs.rows) {
		return io.EOF
	}
	copy(dest, rs.rows[r.pos])
	r.pos++
	return nil
}

// legacyRows: driver.Rows only.
type legacyRows struct{ *rowsCore }

// fullRows: driver.Rows plus RowsNextResultSet and the RowsColumnType*
// interfaces.
type fullRows struct{ *rowsCore }

func (r *fullRows) HasNextResultSet() bool { return r.set+1 < len(r.sets) }

func (r *fullRows) NextResultSet() error {
	if !r.HasNextResultSet() {
		return io.EOF
	}
	r.set++
	r.pos = 0
	return nil
}

func (r *fullRows) column(i int) string { return r.sets[r.set].cols[i] }

func (r *fullRows) ColumnTypeScanType(i int) reflect.Type {
	switch r.column(i) {
	case "id":
		return reflect.TypeFor[int64]()
	case "name":
		return reflect.TypeFor[string]()
	}
	return reflect.TypeFor[any]()
}

func (r *fullRows) ColumnTypeDatabaseTypeName(i int) string {
	switch r.column(i) {
	case "id":
		return "INTEGER"
	case "name":
		return "TEXT"
	}
	return ""
}

func (r *fullRows) ColumnTypeLength(i int) (int64, bool) {
	if r.column(i) == "name" {
		return 255, true
	}
	return 0, false
}

func (r *fullRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if r.column(i) == "id" {
		return false, true
	}
	return true, true
}

func (r *fullRows) ColumnTypePrecisionScale(int) (precision, scale int64, ok bool) {
	return 0, 0, false
}
