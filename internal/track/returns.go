package track

import (
	"log/slog"
	"sync/atomic"
)

// A conn goes back to database/sql's pool without telling the driver,
// except through IsValid, which database/sql calls on the conn it holds:
// sqlwatch's, or that of a wrapper outside sqlwatch (otelsql, sqlhooks,
// ...) opened over sqlwatch's driver. A wrapper whose conn has no IsValid
// hides every return, and each conn would look checked out from its first
// statement on: reported as a leak once idle past the threshold, at the
// line that last used it. That false report is withheld: while conns of
// the pool were opened by such a wrapper (NoteWrapperOpen) and no return
// has been seen yet (NoteReturn), conn checkouts that no tx or rows holds
// are not reported, listed or counted (unseen), and the watchdog says
// once why. A return seen later ends the wait, and the
// checkouts withheld are reported by the next pass if still open.
type returnsState struct {
	wrapped atomic.Bool            // a wrapper outside sqlwatch opened a conn
	seen    atomic.Bool            // a conn's return was seen (IsValid)
	caller  atomic.Pointer[string] // the wrapper's function that opened it
	warned  bool                   // watchdog only: the reason was logged
}

// NoteWrapperOpen records that a conn of the pool was opened by caller, a
// function outside database/sql and sqlwatch (a driver wrapper around
// sqlwatch's). Called when a conn is opened, not per statement.
func (t *Tracker) NoteWrapperOpen(caller string) {
	if t.returnsState.wrapped.Load() {
		return
	}
	t.returnsState.caller.Store(&caller)
	t.returnsState.wrapped.Store(true)
}

// NoteReturn records that a conn's return to the pool was seen. Called by
// IsValid: after the first call it is one atomic load.
func (t *Tracker) NoteReturn() {
	if !t.returnsState.seen.Load() {
		t.returnsState.seen.Store(true)
	}
}

// returnsHidden reports whether conn checkouts must not be reported: a
// wrapper opened conns of the pool and no return has been seen.
func (t *Tracker) returnsHidden() bool {
	return t.returnsState.wrapped.Load() && !t.returnsState.seen.Load()
}

// warnHidden logs, once per pool, why a conn checkout past its threshold
// was not reported. Watchdog only.
func (t *Tracker) warnHidden() {
	if t.returnsState.warned {
		return
	}
	t.returnsState.warned = true
	caller := ""
	if p := t.returnsState.caller.Load(); p != nil {
		caller = *p
	}
	t.log(slog.LevelWarn, "sqlwatch: conn leak reports of this pool wait: no conn has been seen going back to the pool, "+
		"and its conns are opened by a driver wrapper outside sqlwatch, which may not pass on database/sql's IsValid; "+
		"transactions and rows are still reported. Open the wrapper first and sqlwatch over it (docs/integrations.md)",
		[]slog.Attr{
			slog.String("db_name", t.cfg.DBName),
			slog.String("opened_by", caller),
			slog.String("threshold", t.cfg.Thresholds[KindConn].String()),
		})
}

// unseen reports whether r is a conn checkout that is not known to be
// one: while the pool's returns are hidden, a conn that no tx or rows
// holds may be idle in the pool. Such checkouts are left out of the leak
// reports, the gate, the page, the scrape's counts and the pool alert's
// holders. hidden is t.returnsHidden(), read once by the caller; r's
// shard lock is held.
func unseen(hidden bool, r *Resource) bool {
	return hidden && r.kind == KindConn && !r.covered()
}
