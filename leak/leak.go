// Package leak reports the resources a database/sql pool opened through
// sqlwatch leaves open — transactions, checked-out connections, open rows
// and prepared statements — and the misuse its detectors find.
//
// Every pool opened through package github.com/sqlwatch/sqlwatch/driver
// is tracked: a watchdog logs, through log/slog, one [Report] for each
// resource open past its kind's threshold, and one more line when it is
// finally closed; the driver's detectors log a [Misuse]. The driver's
// options (WithReportFunc, WithMisuseFunc) hand the same values to a
// callback. [StatsOf] returns a pool's counters and [Snapshot] what it
// has open now.
//
// The test gate fails a test that leaves a resource open, in the manner
// of go.uber.org/goleak: t.Cleanup([Check](t)) at the start of a test,
// [VerifyNone] for "nothing open at all", or [VerifyTestMain] in
// TestMain. [NewMonitor] watches a pool's wait for connections and raises
// a [PoolAlert]. [Handler] serves a live page of every open resource.
//
// The fields of the report types are described in the README
// (https://github.com/sqlwatch/sqlwatch#reports) and by go doc on
// package internal/track, which defines them.
package leak

import (
	"database/sql"
	"slices"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Kind is the kind of a tracked resource; its String method returns
// "tx", "conn", "rows" or "stmt".
type Kind = track.Kind

// The kinds of tracked resources.
const (
	KindTx   = track.KindTx   // a transaction (*sql.Tx), from BeginTx to Commit or Rollback
	KindConn = track.KindConn // a connection checked out of the pool, until it is returned or closed
	KindRows = track.KindRows // a result set, from the query until Rows.Close
	KindStmt = track.KindStmt // a prepared statement, from Prepare until Stmt.Close
)

// Kinds returns every Kind, in order, in a new slice.
func Kinds() []Kind { return slices.Clone(track.Kinds[:]) }

// Report describes a resource open past its threshold or, when Released
// is true, the end of one reported earlier: its Kind, DBName, Age,
// Threshold, Origin ("dir/file.go:LINE" of the application's call),
// Func, Stack (the application's frames), Statements, LastQuery
// (truncated, never argument values) and Goroutine.
type Report = track.Report

// Misuse describes one misuse found by the driver's detectors: its Kind
// (one of the Misuse* constants), the statement that showed it (Here),
// the other side (There), the error Class, the open transactions that
// may hold the lock (Holders: age, origin, func, goroutine, whether it
// wrote, last query), and for a dead conn its Age, Idle and State.
type Misuse = track.Misuse

// Site is one side of a [Misuse]: Origin, Func, Stack, Goroutine, Query.
type Site = track.Site

// Stats counts what sqlwatch did for one pool: leak reports (in all and
// ReportedByKind, indexed by Kind), pool alerts, release lines, reports
// suppressed by the rate limit or Dropped, Panics recovered, Misuse by
// misuse kind and ConnDeaths by death state.
type Stats = track.Stats

// Misuse kinds: the kind field of a misuse report and the kind label of
// sqlwatch_misuse_total.
const (
	// MisuseTxBypass: a goroutine that holds an open transaction runs a
	// statement on the same pool outside it (a latent self-deadlock).
	MisuseTxBypass = "tx_bypass"
	// MisuseConcurrent: one tx or conn used by two goroutines at once.
	MisuseConcurrent = "concurrent"
	// MisuseOpenRows: a statement issued on a tx or conn while rows from
	// it are still open.
	MisuseOpenRows = "open_rows"
	// MisuseLockConflict: a statement failed with a deadlock, a lock
	// timeout or SQLite's busy; the report lists the likely holders.
	MisuseLockConflict = "lock_conflict"
	// MisuseConnKilled: a conn held by the application (in a tx, a
	// *sql.Conn, open rows) died.
	MisuseConnKilled = "conn_killed"
	// MisuseSQLTxLeak: a conn went back to the pool inside a transaction
	// begun with SQL text (BEGIN, START TRANSACTION, SET autocommit = 0)
	// rather than BeginTx (State SQLTxReleased); and a statement of the
	// next checkout ran inside it (State SQLTxReused).
	MisuseSQLTxLeak = "sql_tx_leak"
)

// The states of a sql_tx_leak report: Misuse.State.
const (
	SQLTxReleased = "released" // the conn went back to the pool inside the tx
	SQLTxReused   = "reused"   // a statement of the next checkout ran inside it
)

// MisuseKinds returns the misuse kinds, in a new slice.
func MisuseKinds() []string { return slices.Clone(track.MisuseKinds[:]) }

// Conn death states: Misuse.State and the keys of Stats.ConnDeaths.
const (
	DeathIdle = "idle"  // died in the pool: found dead at checkout or at the first statement
	DeathHeld = "held"  // held by the application outside a transaction
	DeathInTx = "in_tx" // inside a transaction
)

// Errors; test with errors.Is.
var (
	// ErrNotWatched: the *sql.DB was not opened through sqlwatch.
	ErrNotWatched = track.ErrNotWatched
	// ErrInvalidConfig: a negative duration or limit.
	ErrInvalidConfig = track.ErrInvalidConfig
)

// tracker returns db's tracker.
func tracker(db *sql.DB) (*track.Tracker, error) {
	if db == nil {
		return nil, ErrNotWatched
	}
	p, ok := db.Driver().(interface{ Tracker() *track.Tracker })
	if !ok {
		return nil, ErrNotWatched
	}
	return p.Tracker(), nil
}

// StatsOf returns the counters of db's pool, or ErrNotWatched when db was
// not opened through sqlwatch. It does not touch the pool.
func StatsOf(db *sql.DB) (Stats, error) {
	t, err := tracker(db)
	if err != nil {
		return Stats{}, err
	}
	return t.Stats(), nil
}

// Snapshot describes every resource of db's pool open now, oldest first,
// as Reports whose Age is the age now; or it returns ErrNotWatched. It
// symbolizes stacks, so it is slow: for pages and tests, never per
// statement.
func Snapshot(db *sql.DB) ([]Report, error) {
	t, err := tracker(db)
	if err != nil {
		return nil, err
	}
	return t.Snapshot(), nil
}
