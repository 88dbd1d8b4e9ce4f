// Package leak reports what a pool opened through package
// github.com/sqlwatch/sqlwatch/driver leaves open (transactions, checked-out
// connections, rows, statements) and the misuse its detectors find: logged
// through log/slog as a [Report] or [Misuse], or handed to the driver's
// WithReportFunc and WithMisuseFunc. It also holds the test gate ([Check],
// [VerifyNone], [VerifyTestMain]), the pool-wait [Monitor] and the live page
// ([Handler]). The user guide, with every report field, is the README:
// https://github.com/sqlwatch/sqlwatch#readme.
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

// Report is a resource open past its threshold or, when Released, the end
// of one reported earlier: README "Reports"; Go fields: go doc
// github.com/sqlwatch/sqlwatch/internal/track.Report (likewise Misuse,
// PoolAlert, Site and Stats).
type Report = track.Report

// Misuse is one misuse found by the driver's detectors (README "Misuse
// report fields").
type Misuse = track.Misuse

// Site is one side of a [Misuse]: Origin, Func, Stack, Goroutine, Query.
type Site = track.Site

// Stats are the counters of one pool: reports (ReportedByKind indexed by
// Kind), alerts, drops, panics, Misuse by kind, ConnDeaths by death state.
type Stats = track.Stats

// Misuse kinds: Misuse.Kind and the kind label of sqlwatch_misuse_total
// (README#misuse).
const (
	MisuseTxBypass     = "tx_bypass"     // a statement outside the tx its goroutine holds, on the same pool
	MisuseConcurrent   = "concurrent"    // one tx or conn used by two goroutines at once
	MisuseOpenRows     = "open_rows"     // a statement on a tx or conn whose rows are still open
	MisuseLockConflict = "lock_conflict" // a deadlock, lock timeout or SQLite busy, with the likely holders
	MisuseConnKilled   = "conn_killed"   // a conn held by the application died
	MisuseSQLTxLeak    = "sql_tx_leak"   // a tx begun with SQL text outlived its checkout
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
	ErrNotWatched    = track.ErrNotWatched    // the *sql.DB was not opened through sqlwatch
	ErrInvalidConfig = track.ErrInvalidConfig // a negative duration or limit
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
// or returns ErrNotWatched. It symbolizes stacks: slow, not per statement.
func Snapshot(db *sql.DB) ([]Report, error) {
	t, err := tracker(db)
	if err != nil {
		return nil, err
	}
	return t.Snapshot(), nil
}
