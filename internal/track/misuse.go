package track

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/sqltext"
	"github.com/sqlwatch/sqlwatch/stack"
)

// Misuse kinds, as package leak documents them (a test there keeps the
// two lists equal).
const (
	MisuseTxBypass, MisuseConcurrent, MisuseOpenRows = "tx_bypass", "concurrent", "open_rows"
	MisuseLockConflict, MisuseConnKilled             = "lock_conflict", "conn_killed"
	MisuseSQLTxLeak                                  = "sql_tx_leak"
)

// MisuseKinds lists the misuse kinds, in the order of Stats.Misuse's
// counters. An array: its length sizes the counters.
var MisuseKinds = [...]string{MisuseTxBypass, MisuseConcurrent, MisuseOpenRows, MisuseLockConflict, MisuseConnKilled, MisuseSQLTxLeak}

// The states of a sql_tx_leak report (see leak.SQLTxReleased).
const (
	SQLTxReleased = "released"
	SQLTxReused   = "reused"
)

// Conn death states, the state label of sqlwatch_conn_deaths_total.
const (
	DeathIdle = "idle"  // died in the pool: found dead at checkout or at the first statement
	DeathHeld = "held"  // held by the application outside a transaction
	DeathInTx = "in_tx" // inside a transaction
)

var deathStates = [...]string{DeathIdle, DeathHeld, DeathInTx}

// Site is where one side of a misuse happened. In the log, the other
// side is an object of these four keys, always all of them (query is ""
// when the tx or conn has run no statement), and its stack is a key of
// its own beside it (tx_stack, rows_stack, holder_stack).
type Site struct {
	Origin    string        `json:"origin"`
	Func      string        `json:"func"`
	Stack     []stack.Frame `json:"-"`
	Goroutine int64         `json:"goroutine"`
	Query     string        `json:"query"`
	// Attrs are the side's context attributes (see Report.Attrs): for
	// Here, the statement's context's, logged as the group
	// "here_context"; for There, those of its tx, rows or conn checkout
	// (sql_tx_leak: of the checkout that ran the statement that began the
	// tx), logged as the group "<side>_context" (tx_context,
	// rows_context, holder_context).
	Attrs []slog.Attr `json:"-"`
}

// Misuse describes one misuse found by the driver's detectors.
type Misuse struct {
	Kind   string
	DBName string
	// Here is the statement that showed the misuse: the bypassing
	// statement, the second goroutine's statement, the statement issued
	// over open rows, the statement that failed; for sql_tx_leak, the
	// call that released the conn (its query is "") or the statement
	// that ran inside the leftover tx.
	Here Site
	// There is the other side: where the held tx began (tx_bypass), where
	// the open rows were queried (concurrent, open_rows), where the dead
	// conn was taken (conn_killed), the statement that began the tx
	// (sql_tx_leak).
	There Site
	// Class is the error class (lock_conflict, conn_killed).
	Class string
	// Holders are the other open transactions of the pool, oldest first
	// (lock_conflict; empty, not nil, when there are none, so that the
	// log's holders is a list).
	Holders []TxHolder
	// Age and Idle describe the dead conn (conn_killed): how long it had
	// been held, and how long it had been idle before the failing
	// statement. State is DeathHeld or DeathInTx. For sql_tx_leak, Age
	// is the tx's age and State is SQLTxReleased or SQLTxReused.
	Age, Idle time.Duration
	State     string
}

// TxHolder is an open transaction that may hold the lock.
type TxHolder struct {
	Age       time.Duration `json:"-"`
	AgeText   string        `json:"age"`
	Origin    string        `json:"origin"`
	Func      string        `json:"func"`
	Goroutine int64         `json:"goroutine"`
	Wrote     bool          `json:"wrote"`
	LastQuery string        `json:"last_query"`
	// Attrs are the tx's context attributes (see Report.Attrs); Context
	// is the same as a map, for the log's JSON.
	Attrs   []slog.Attr       `json:"-"`
	Context map[string]string `json:"context,omitempty"`
}

// MisuseEvent is what the driver hands the tracker; the tracker's
// watchdog symbolizes, deduplicates and logs it, so the statement never
// waits for a logger.
type MisuseEvent struct {
	Kind          string
	Class         string
	Query         string
	Here          callstack.Stack
	HereGoroutine int64
	HereAttrs     []slog.Attr // the statement's context attributes (Tracker.ContextAttrs)
	There         *Resource   // the other side's resource, if it has one
	Age, Idle     time.Duration
	State         string
	Self          *Resource // lock_conflict: the failing statement's own tx, left out of the holders
	// Repeat marks a misuse the driver has already reported from the
	// same place: it is counted, not queued.
	Repeat bool
	// ThereStack, ThereGoroutine and ThereQuery are the other side when
	// it is no tracked resource (There is nil): for sql_tx_leak, the
	// statement that began the tx. ThereQuery is cut to the query limit.
	ThereStack     callstack.Stack
	ThereGoroutine int64
	ThereQuery     string
	ThereAttrs     []slog.Attr
}

// ReportMisuse counts e and, unless it is a Repeat, queues it for the
// watchdog. It never blocks; when the queue is full the event is counted
// and dropped.
func (t *Tracker) ReportMisuse(e *MisuseEvent) {
	t.countMisuse(e.Kind)
	if e.Repeat {
		return
	}
	if len(t.misuses) == cap(t.misuses) {
		t.dropped.Add(1) // full: drop without building the item
		return
	}

	ev := &misuseItem{ev: *e}
	ev.ev.Query = t.queuedText(e.Query)
	if e.There != nil {
		ev.there = e.There.stack
		ev.thereStart = clock.Time(e.There.start)
		ev.thereGoid = e.There.goid
		ev.thereAttrs = e.There.attrs
		_, ev.thereQuery = e.There.statementInfo()
	} else if e.ThereStack.Len() > 0 {
		ev.there = e.ThereStack
		ev.thereGoid = e.ThereGoroutine
		ev.thereQuery = t.queuedText(e.ThereQuery)
		ev.thereAttrs = e.ThereAttrs
	}
	ev.ev.There = nil
	ev.ev.ThereQuery = ""
	if e.Self != nil {
		// Kept as an identity: by the time the watchdog lists the
		// holders, the Resource may be recycled for another tx.
		sh := e.Self.shard
		sh.mu.Lock()
		ev.self = e.Self.id()
		sh.mu.Unlock()
	}
	ev.ev.Self = nil
	select {
	case t.misuses <- ev:
	default:
		t.dropped.Add(1)
	}
}

// ConnDied counts a conn death in state (DeathIdle, DeathHeld, DeathInTx)
// after idle time without a statement. When deaths cluster at a similar
// idle time, the watchdog logs a hint, once.
func (t *Tracker) ConnDied(state string, idle time.Duration) {
	if i := slices.Index(deathStates[:], state); i >= 0 {
		t.deaths[i].Add(1)
	}
	select {
	case t.misuses <- &misuseItem{death: true, idle: idle}:
	default:
		t.dropped.Add(1)
	}
}

type misuseItem struct {
	ev         MisuseEvent
	there      callstack.Stack
	thereStart time.Time
	thereGoid  int64
	thereQuery string
	thereAttrs []slog.Attr
	self       ID
	death      bool
	idle       time.Duration
}

// countMisuse counts one finding of kind in Stats().Misuse (and so in
// sqlwatch_misuse_total).
func (t *Tracker) countMisuse(kind string) {
	if i := slices.Index(MisuseKinds[:], kind); i >= 0 {
		t.misuseByKind[i].Add(1)
	}
}

// maxSeen bounds the memory of reported misuse sites.
const maxSeen = 4096

func (t *Tracker) logMisuse(it *misuseItem) {
	defer t.recoverPanic()
	if it.death {
		t.noteDeath(it.idle)
		return
	}
	e := &it.ev
	m := Misuse{Kind: e.Kind, DBName: t.cfg.DBName, Class: e.Class, Age: e.Age, Idle: e.Idle, State: e.State}
	m.Here = t.site(&e.Here, e.HereGoroutine, e.Query)
	m.Here.Attrs = e.HereAttrs
	if it.there.Len() > 0 {
		m.There = t.site(&it.there, it.thereGoid, it.thereQuery)
		m.There.Attrs = it.thereAttrs
	}
	key := m.Kind + "|" + m.Here.Origin + "|" + m.There.Origin
	if m.Kind == MisuseSQLTxLeak {
		key += "|" + m.State // a release and a reuse at the same line
	}
	if t.seen[key] {
		return
	}
	if len(t.seen) < maxSeen {
		t.seen[key] = true
	}
	if m.Kind == MisuseLockConflict {
		m.Holders = t.txHolders(it.self)
	}
	msg, attrs := misuseMessage(&m)
	t.log(slog.LevelWarn, msg, attrs)
	t.callbackMisuse(m)
}

func (t *Tracker) site(st *callstack.Stack, goid int64, query string) Site {
	rep := Report{}
	t.resolve(&rep, st)
	return Site{Origin: rep.Origin, Func: rep.Func, Stack: rep.Stack, Goroutine: goid, Query: t.sqlText(query)}
}

// queuedText is a statement's text as a queued misuse keeps it: cut to
// QueryLimit and copied, marked with "…" as a resource's cut text is
// (see sqlText), so that a full queue holds at most QueryLimit bytes of
// text per event, never the statements themselves.
func (t *Tracker) queuedText(q string) string {
	if t.cfg.QueryLimit > 0 && len(q) > t.cfg.QueryLimit {
		return sqltext.Truncate(q, t.cfg.QueryLimit) + "…"
	}
	return q
}

// sqlText is SQL text as it leaves the tracker: cut to QueryLimit (the
// text kept on a resource already is; a misuse's own statement is not)
// and, with RedactSQL, with its literals replaced by "?". The "…" that
// marks a cut text is kept out of the redaction, which would take it for
// the end of an unterminated literal.
func (t *Tracker) sqlText(q string) string {
	cut := strings.HasSuffix(q, "…")
	q = strings.TrimSuffix(q, "…")
	if t.cfg.QueryLimit > 0 && len(q) > t.cfg.QueryLimit {
		q, cut = sqltext.Truncate(q, t.cfg.QueryLimit), true
	}
	if t.cfg.RedactSQL {
		q = t.dialect.SQL(q)
	}
	if cut {
		q += "…"
	}
	return q
}

// txHolders lists the open transactions, oldest first, but self.
func (t *Tracker) txHolders(self ID) []TxHolder {
	now := t.cfg.Now()
	snaps := t.collect(func(r *Resource) bool { return r.kind == KindTx && r.id() != self })
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].start.Before(snaps[j].start) })
	out := make([]TxHolder, 0, len(snaps)) // [] in the log, not null
	for i := range snaps {
		rep := t.describe(&snaps[i], now)
		out = append(out, TxHolder{Age: rep.Age, AgeText: round(rep.Age).String(), Origin: rep.Origin, Func: rep.Func,
			Goroutine: snaps[i].goid, Wrote: snaps[i].wrote, LastQuery: rep.LastQuery, Attrs: rep.Attrs, Context: attrMap(rep.Attrs)})
	}
	return out
}

func misuseMessage(m *Misuse) (string, []slog.Attr) {
	attrs := []slog.Attr{
		slog.String("kind", m.Kind),
		slog.String("db_name", m.DBName),
		slog.String("origin", m.Here.Origin),
		slog.String("func", m.Here.Func),
		slog.Any("stack", frameStrings(m.Here.Stack)),
		slog.Int64("goroutine", m.Here.Goroutine),
		slog.String("query", m.Here.Query),
	}
	if len(m.Here.Attrs) > 0 {
		attrs = append(attrs, slog.Attr{Key: "here_context", Value: slog.GroupValue(m.Here.Attrs...)})
	}
	other := func(name string) {
		attrs = append(attrs, slog.Any(name, m.There), slog.Any(name+"_stack", frameStrings(m.There.Stack)))
		if len(m.There.Attrs) > 0 {
			attrs = append(attrs, slog.Attr{Key: name + "_context", Value: slog.GroupValue(m.There.Attrs...)})
		}
	}
	var msg string
	switch m.Kind {
	case MisuseTxBypass:
		msg = fmt.Sprintf("sqlwatch: pool used outside its transaction by the goroutine holding it, at %s; the transaction was begun at %s (a self-deadlock once the pool is full)",
			m.Here.Origin, m.There.Origin)
		other("tx")
	case MisuseConcurrent:
		msg = fmt.Sprintf("sqlwatch: one connection used by two goroutines at once: a statement at %s (goroutine %d) while rows queried at %s (goroutine %d) are open",
			m.Here.Origin, m.Here.Goroutine, m.There.Origin, m.There.Goroutine)
		other("rows")
	case MisuseOpenRows:
		msg = fmt.Sprintf("sqlwatch: statement at %s issued while rows queried at %s on the same connection are still open",
			m.Here.Origin, m.There.Origin)
		other("rows")
	case MisuseLockConflict:
		msg = fmt.Sprintf("sqlwatch: %s at %s; %d other open transactions", m.Class, m.Here.Origin, len(m.Holders))
		if len(m.Holders) > 0 {
			h := m.Holders[0]
			msg += fmt.Sprintf(", oldest begun at %s %s ago", h.Origin, h.AgeText)
		}
		attrs = append(attrs, slog.String("class", m.Class), slog.Any("holders", m.Holders))
	case MisuseConnKilled:
		where := "held"
		if m.State == DeathInTx {
			where = "in a transaction"
		}
		msg = fmt.Sprintf("sqlwatch: connection died under the application at %s (%s, taken at %s, held %s, idle %s): %s",
			m.Here.Origin, where, m.There.Origin, round(m.Age), round(m.Idle), m.Class)
		attrs = append(attrs, slog.String("class", m.Class), slog.String("state", m.State),
			slog.String("age", round(m.Age).String()), slog.String("idle", round(m.Idle).String()))
		other("holder")
	case MisuseSQLTxLeak:
		if m.State == SQLTxReused {
			msg = fmt.Sprintf("sqlwatch: statement at %s ran inside a transaction left open by an earlier user of its connection, begun with SQL %s ago at %s",
				m.Here.Origin, round(m.Age), m.There.Origin)
		} else {
			msg = fmt.Sprintf("sqlwatch: connection returned to the pool at %s inside a transaction begun with SQL %s ago at %s (the next user of the connection runs inside it, or the driver discards it with the transaction's work)",
				m.Here.Origin, round(m.Age), m.There.Origin)
		}
		attrs = append(attrs, slog.String("state", m.State), slog.String("age", round(m.Age).String()))
		other("tx")
	}
	return msg, attrs
}

func (t *Tracker) callbackMisuse(m Misuse) {
	if t.cfg.OnMisuse == nil {
		return
	}
	t.guard(func() { t.cfg.OnMisuse(m) })
}

// noteDeath keeps the idle times of recent deaths and logs, once per
// tracker, a hint when three or more cluster within 25% of their median.
func (t *Tracker) noteDeath(idle time.Duration) {
	if t.hinted || idle < time.Second {
		return
	}
	t.deathIdles = append(t.deathIdles, idle)
	if len(t.deathIdles) > 8 {
		t.deathIdles = t.deathIdles[1:]
	}
	if len(t.deathIdles) < 3 {
		return
	}
	s := slices.Clone(t.deathIdles)
	slices.Sort(s)
	med := s[len(s)/2]
	near := 0
	for _, d := range s {
		if d >= med*3/4 && d <= med*5/4 {
			near++
		}
	}
	if near < 3 {
		return
	}
	t.hinted = true
	t.log(slog.LevelWarn, fmt.Sprintf("sqlwatch: connections die after about %s idle; set db.SetConnMaxIdleTime (and SetConnMaxLifetime) below it — the server's wait_timeout or idle_in_transaction_session_timeout is the usual cause", round(med)),
		[]slog.Attr{slog.String("kind", "conn_death_hint"), slog.String("db_name", t.cfg.DBName), slog.String("idle", round(med).String()), slog.Int("deaths", near)})
}
