// Package track is sqlwatch's tracker: the registry of open resources
// the driver keeps on the hot path (shards, resources, histograms), the
// watchdog that reports those open past a threshold, the queue of misuse
// reports, the pool monitor's engine and the live page's data. Package
// leak re-exports the types a user sees (Kind, Report, Misuse, PoolAlert,
// Stats) and the entry points a user calls; the driver and the metrics
// collector use this package directly.
//
// A [Tracker] belongs to one pool. The driver calls [Tracker.Open] when a
// resource is opened and [Tracker.Close] when it ends; the hot path
// captures the caller's stack as program counters only. A watchdog
// goroutine, one per Tracker, scans the open resources on an interval, and
// for each one older than its kind's threshold logs exactly one warning
// through log/slog (symbolizing the stack only then) and hands the same
// [Report] to the configured callback. When a reported resource is finally
// closed, one info line says how long it was held.
//
// All methods of Tracker and Resource are safe for concurrent use.
package track

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/sqlwatch/sqlwatch/stack"
)

// Kind is the kind of a tracked resource.
type Kind uint8

// The kinds of tracked resources.
const (
	KindTx   Kind = iota + 1 // a transaction (*sql.Tx), from BeginTx to Commit or Rollback
	KindConn                 // a connection checked out of the pool, until it is returned or closed
	KindRows                 // a result set, from the query until Rows.Close
	KindStmt                 // a prepared statement, from Prepare until Stmt.Close
)

// numKinds sizes arrays indexed by Kind.
const numKinds = int(KindStmt) + 1

// Kinds lists every Kind, in order.
var Kinds = [...]Kind{KindTx, KindConn, KindRows, KindStmt}

// String returns "tx", "conn", "rows" or "stmt".
func (k Kind) String() string {
	switch k {
	case KindTx:
		return "tx"
	case KindConn:
		return "conn"
	case KindRows:
		return "rows"
	case KindStmt:
		return "stmt"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// noun is the word a report's first line uses for the kind.
func (k Kind) noun() string {
	switch k {
	case KindTx:
		return "transaction"
	case KindConn:
		return "connection"
	case KindRows:
		return "rows"
	case KindStmt:
		return "prepared statement"
	}
	return k.String()
}

// verb says what the application did at the origin.
func (k Kind) verb() string {
	switch k {
	case KindTx:
		return "begun at"
	case KindConn:
		return "checked out at"
	case KindRows:
		return "queried at"
	case KindStmt:
		return "prepared at"
	}
	return "opened at"
}

// Report describes a resource open past its threshold, or, when Released
// is true, the end of a resource that was reported earlier.
type Report struct {
	// Released is false for a leak report and true for the follow-up
	// sent when the reported resource is finally closed.
	Released bool
	Kind     Kind
	// DBName names the pool; it never holds a password.
	DBName string
	// Opened is when the resource was opened (on the tracker's clock).
	Opened time.Time
	// Age is how long the resource had been open when reported.
	Age time.Duration
	// Held is how long a released resource was open in all (Released only).
	Held time.Duration
	// Threshold is the kind's threshold that Age exceeded.
	Threshold time.Duration
	// Origin is "dir/file.go:LINE" of the application's call that opened
	// the resource: the first frame outside the runtime, database/sql,
	// sqlwatch and the known data-access libraries. It is "unknown" when
	// no frame qualifies.
	Origin string
	// Func is the function at Origin.
	Func string
	// Stack holds the application's frames, innermost first.
	Stack []stack.Frame
	// Statements is the number of statements run on a tx or conn.
	Statements int64
	// LastQuery is the SQL text of the last statement of a tx or conn,
	// or the query of rows and stmt, truncated; never argument values.
	LastQuery string
	// Goroutine is the id of the goroutine that opened the resource, as
	// goroutine dumps print it.
	Goroutine int64
	// Suppressed counts the leak reports dropped by the rate limit since
	// the previous report was logged.
	Suppressed int64
	// Attrs are the attributes the driver's WithContextAttrs function
	// took from the context the resource was opened under (a tx: the
	// context given to BeginTx; a conn: that of its checkout's first call
	// with a context), bounded, values as strings; nil without the option.
	// Never modify them: reports of one resource share them.
	Attrs []slog.Attr
}

// Stats counts what a Tracker did, for tests and metrics.
type Stats struct {
	DBName   string // the pool's name (see driver.WithDBName)
	Reported int64  // leak reports logged
	// ReportedByKind splits Reported by Kind (index with a Kind).
	ReportedByKind [numKinds]int64
	PoolAlerts     int64 // pool-wait alerts raised by a Monitor
	Released       int64 // release lines logged
	Suppressed     int64 // leak reports dropped by the rate limit
	Dropped        int64 // release lines and misuse reports dropped because the queue was full, logger or callback calls (the watchdog's or a Monitor's) still running when Stop gave up waiting, and release lines after Stop whose logger or callback was still running after 2 seconds
	Panics         int64 // panics recovered from callbacks, loggers or sqlwatch itself
	// Misuse counts what the driver's detectors found, by misuse kind
	// (MisuseKinds), including occurrences not logged again.
	Misuse map[string]int64
	// ConnDeaths counts connections that died, by state (idle, held,
	// in_tx).
	ConnDeaths map[string]int64
}

// Verb says what the application did at a report's origin, for the
// test gate's text: "begun at", "checked out at"...
func Verb(k Kind) string { return k.verb() }

// Round rounds an age for reports: to the second from a minute on, else
// to the millisecond.
func Round(d time.Duration) time.Duration { return round(d) }
