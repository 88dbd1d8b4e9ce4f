package track

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/gdump"
)

// Monitor defaults; see [MonitorConfig].
const (
	DefaultMonitorInterval = time.Second
	DefaultWaitLimit       = time.Second
	DefaultAlertGap        = time.Minute
)

// ErrNotWatched is returned by [NewMonitor] for a *sql.DB that was not
// opened through sqlwatch.
var ErrNotWatched = errors.New("sqlwatch: the *sql.DB was not opened through sqlwatch")

// MonitorConfig configures a [Monitor]: the fields of leak.MonitorConfig,
// which documents them (defaults DefaultMonitorInterval, DefaultWaitLimit,
// DefaultAlertGap, the pool's logger), and the test hooks.
type MonitorConfig struct {
	Interval, WaitLimit, AlertGap time.Duration
	Logger                        *slog.Logger
	OnAlert                       func(PoolAlert)

	// For tests: the stats source (default db.Stats), the clock (default
	// the tracker's) and the goroutine dump (default runtime.Stack of all
	// goroutines).
	Stats      func() sql.DBStats
	Now        func() time.Time
	Goroutines func() []byte
}

// PoolAlert is a pool-wait alert, or (Recovered) the end of one.
type PoolAlert struct {
	Recovered bool
	DBName    string
	// Reason is "wait" (the mean wait of recent acquisitions, see
	// MeanWait, exceeded the limit) or "stall" (all connections in use and a goroutine has
	// waited longer than the limit with none returned meanwhile).
	Reason    string
	WaitLimit time.Duration
	// MeanWait is the mean wait of the acquisitions since the last poll
	// that saw a free connection (waits still going on count with no
	// duration yet).
	MeanWait time.Duration
	// SinceReturn is, for a stall, how long a goroutine has been waiting
	// with no connection returned (at least: waits and returns are dated
	// to the polls that see them); for a wait alert, the time since the
	// last poll that saw a return.
	SinceReturn time.Duration
	Duration    time.Duration // for a recovery, how long the episode lasted
	Stats       sql.DBStats
	Holders     []Holder // oldest first
	Waiters     []Waiter
	// SelfDeadlock is true when a waiting goroutine itself holds a
	// connection of the same pool: it waits for itself.
	SelfDeadlock bool
}

// Holder is one checked-out connection.
type Holder struct {
	Age       time.Duration `json:"-"`
	AgeText   string        `json:"age"`
	Origin    string        `json:"origin"`
	Func      string        `json:"func"`
	InTx      bool          `json:"in_tx"`
	LastQuery string        `json:"last_query"`
	Goroutine int64         `json:"goroutine"`
	// Attrs are the checkout's context attributes (see Report.Attrs),
	// taken at its first statement; Context is the same as a map, for
	// the log's JSON.
	Attrs   []slog.Attr       `json:"-"`
	Context map[string]string `json:"context,omitempty"`
}

// Waiter is one goroutine waiting for a connection of the pool (or of
// another pool of the process: database/sql's stack does not say which).
type Waiter struct {
	Goroutine int64    `json:"goroutine"`
	State     string   `json:"state"` // as the goroutine dump prints it, e.g. "select, 2 minutes"
	Origin    string   `json:"origin"`
	Func      string   `json:"func"`
	Stack     []string `json:"stack"`
	// Holds is true when this goroutine holds a connection of the pool.
	// (A goroutine that opened a resource and moved on, such as a
	// keep-alive HTTP server goroutine after a leaky request, still counts
	// as its holder.)
	Holds bool `json:"holds_conn"`

	funcs map[string]bool // the functions on its stack
}

// Monitor polls a pool's statistics and raises an alert when acquiring a
// connection takes too long or the pool stalls. Create it with
// [NewMonitor]; Stop it before or with the pool.
type Monitor struct {
	t    *Tracker
	cfg  MonitorConfig
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// db is the pool's address as a goroutine dump prints it, to tell
	// its waiters from other pools' (database/sql.(*DB).conn's receiver,
	// or pgxpool.(*Pool).Acquire's when pgx is true).
	db string
	// pgx is true for a pgxpool pool: its waiters block in puddle's
	// acquire, not in database/sql.
	pgx bool

	checkMu sync.Mutex // serializes Check

	// poll state, guarded by checkMu
	prev        sql.DBStats // the last poll's stats
	win         sql.DBStats // the stats of the last poll that saw a free connection
	havePrev    bool
	returnCount uint64      // the tracker's returns at the last poll
	lastReturn  time.Time   // the last poll that saw a return
	base        sql.DBStats // the stats of the last poll that saw a return or the end of a wait
	baseAt      time.Time   // that poll's time
	waitAt      time.Time   // the first poll since baseAt that saw a wait begin; zero if none
	lastDump    time.Time
	inEpisode   bool
	alerted     bool // the current episode was alerted
	cleared     bool // a stall episode saw a return or the pool no longer full
	episodeAt   time.Time
	lastAlert   time.Time
	reason      string // of the current episode
}

// NewMonitor starts monitoring db, which must have been opened through
// sqlwatch. Negative durations are an error wrapping ErrInvalidConfig.
func NewMonitor(db *sql.DB, cfg MonitorConfig) (*Monitor, error) {
	if db == nil {
		return nil, ErrNotWatched
	}
	p, ok := db.Driver().(interface{ Tracker() *Tracker })
	if !ok {
		return nil, ErrNotWatched
	}
	if cfg.Stats == nil {
		cfg.Stats = db.Stats
	}
	m, err := newMonitor(p.Tracker(), cfg)
	if err != nil {
		return nil, err
	}
	m.db = fmt.Sprintf("%p", db)
	p.Tracker().setDBStats(db.Stats) // the live page shows them
	go m.run()
	return m, nil
}

// NewPgxMonitor starts monitoring a pgxpool pool tracked by t (package
// pgxwatch): cfg.Stats, which must be set, reads its statistics mapped to
// sql.DBStats, and pool is its address as fmt's %p prints it, which tells
// its waiters in a goroutine dump from other pools'.
func NewPgxMonitor(t *Tracker, pool string, cfg MonitorConfig) (*Monitor, error) {
	if t == nil || cfg.Stats == nil {
		return nil, ErrNotWatched
	}
	m, err := newMonitor(t, cfg)
	if err != nil {
		return nil, err
	}
	m.db, m.pgx = pool, true
	t.setDBStats(cfg.Stats) // the live page shows them
	go m.run()
	return m, nil
}

func newMonitor(t *Tracker, cfg MonitorConfig) (*Monitor, error) {
	if cfg.Interval < 0 || cfg.WaitLimit < 0 || cfg.AlertGap < 0 {
		return nil, fmt.Errorf("%w: negative monitor interval, wait limit or alert gap", ErrInvalidConfig)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultMonitorInterval
	}
	if cfg.WaitLimit == 0 {
		cfg.WaitLimit = DefaultWaitLimit
	}
	if cfg.AlertGap == 0 {
		cfg.AlertGap = DefaultAlertGap
	}
	if cfg.Logger == nil {
		cfg.Logger = t.cfg.Logger
	}
	if cfg.Now == nil {
		cfg.Now = t.cfg.Now
	}
	if cfg.Goroutines == nil {
		cfg.Goroutines = gdump.All
	}
	return &Monitor{t: t, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Stop stops the monitor and waits for it. Idempotent.
func (m *Monitor) Stop() {
	m.once.Do(func() {
		close(m.stop)
		<-m.done
	})
}

func (m *Monitor) run() {
	defer close(m.done)
	defer stopping.Delete(m)
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.Check()
		}
	}
}

// Check polls once. The monitor calls it on its interval; tests call it
// with injected stats and clock. Concurrent calls run one after the
// other.
//
// A stall is raised only on proof that a goroutine has waited longer than
// WaitLimit while no connection came back: database/sql counts a wait in
// WaitCount when it begins and adds it to WaitDuration when it ends, and
// the tracker counts the returns. Since the last poll that saw a return
// or the end of a wait (the base), WaitCount rising with WaitDuration
// unchanged proves a wait that is still going on, begun by the first poll
// that saw it rise; with WaitCount unchanged, a goroutine dump that shows
// a waiter proves a wait begun before the base. Waits and returns are
// dated to the polls that see them, so a wait's length is never
// overstated: time in which nobody waited (an idle pool) never counts.
func (m *Monitor) Check() {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	defer m.t.recoverPanic()
	// Stats, then returns, then the clock: a return or a wait seen here
	// happened before now.
	s := m.cfg.Stats()
	rc := m.t.returns()
	now := m.cfg.Now()
	if !m.havePrev {
		m.prev, m.win, m.havePrev = s, s, true
		m.returnCount, m.lastReturn = rc, now
		m.base, m.baseAt, m.waitAt = s, now, time.Time{}
		return
	}
	returned := rc != m.returnCount
	m.returnCount = rc
	if returned {
		m.lastReturn = now
	}
	ended := s.WaitDuration != m.base.WaitDuration
	if returned || ended {
		m.base, m.baseAt, m.waitAt = s, now, time.Time{}
	} else if s.WaitCount > m.base.WaitCount && m.waitAt.IsZero() {
		m.waitAt = now
	}

	dCount := s.WaitCount - m.prev.WaitCount
	m.prev = s
	saturated := s.MaxOpenConnections > 0 && s.InUse >= s.MaxOpenConnections
	// The mean wait is taken over the waits since the last poll that saw
	// the pool with a free connection (no wait going on): a wait that
	// began before that poll has ended and was counted, and one going on
	// now is counted with no duration yet, so the mean never overstates.
	var mean time.Duration
	if dDur := s.WaitDuration - m.win.WaitDuration; dDur > 0 {
		mean = dDur / time.Duration(max(s.WaitCount-m.win.WaitCount, 1))
	}
	if !saturated {
		m.win = s
	}
	limit := m.cfg.WaitLimit

	// waited is the proven length of a wait still going on with no
	// connection returned (a lower bound); stalled when it exceeds the
	// limit. The goroutine dump is read at most once per limit.
	var waited time.Duration
	stalled := false
	if saturated && !returned && !ended && !m.inEpisode {
		switch {
		case !m.waitAt.IsZero():
			waited = now.Sub(m.waitAt)
			stalled = waited > limit
		case s.WaitCount == m.base.WaitCount && now.Sub(m.baseAt) > limit && now.Sub(m.lastDump) >= limit:
			m.lastDump = now
			if len(m.waiters()) > 0 {
				waited, stalled = now.Sub(m.baseAt), true
			}
		}
	}
	waiting := mean > limit

	if !m.inEpisode {
		if !stalled && !waiting {
			return
		}
		reason := "wait"
		if stalled {
			reason = "stall"
		}
		m.inEpisode, m.episodeAt, m.reason, m.cleared = true, now, reason, false
		m.alerted = m.lastAlert.IsZero() || now.Sub(m.lastAlert) >= m.cfg.AlertGap
		if !m.alerted {
			return
		}
		m.lastAlert = now
		since := now.Sub(m.lastReturn)
		if stalled {
			since = waited
		}
		m.alert(PoolAlert{DBName: m.t.cfg.DBName, Reason: reason, WaitLimit: limit,
			MeanWait: mean, SinceReturn: since, Stats: s})
		return
	}
	// An episode ends when its cause is gone and waits are back under
	// the limit: a stall once a connection came back (or the pool is no
	// longer full), a wait episode once no new wait began (or the pool is
	// no longer full). Its recovery is logged only when it was alerted.
	m.cleared = m.cleared || returned || !saturated
	var over bool
	if m.reason == "stall" {
		over = m.cleared && !waiting
	} else {
		over = !waiting && (!saturated || dCount == 0)
	}
	if !over {
		return
	}
	m.inEpisode = false
	if m.alerted {
		m.alerted = false
		m.recovered(PoolAlert{Recovered: true, DBName: m.t.cfg.DBName, Duration: now.Sub(m.episodeAt), Stats: s})
	}
}

func (m *Monitor) alert(a PoolAlert) {
	m.t.poolAlerts.Add(1)
	a.Holders = m.holders()
	a.Waiters = m.waiters()
	// A self-deadlock: a waiter holds a conn of the pool, taken by a
	// function that is still running on its stack (it began a tx, then
	// used the pool instead of the tx).
	for i := range a.Waiters {
		w := &a.Waiters[i]
		for _, h := range a.Holders {
			if h.Goroutine == 0 || h.Goroutine != w.Goroutine {
				continue
			}
			w.Holds = true
			if w.funcs[h.Func] {
				a.SelfDeadlock = true
			}
		}
	}
	s := a.Stats
	var msg string
	if a.Reason == "stall" {
		msg = fmt.Sprintf("sqlwatch: pool stalled: %d/%d connections in use, %d goroutines waiting, none returned for %s",
			s.InUse, s.MaxOpenConnections, len(a.Waiters), round(a.SinceReturn))
	} else {
		msg = fmt.Sprintf("sqlwatch: pool waits average %s (limit %s), %d/%d connections in use",
			round(a.MeanWait), a.WaitLimit, s.InUse, s.MaxOpenConnections)
	}
	if len(a.Holders) > 0 {
		msg += "; oldest holder " + a.Holders[0].Origin
	}
	if a.SelfDeadlock {
		msg += "; SELF-DEADLOCK: a goroutine waits for a connection while holding one of the same pool"
	}
	m.log(slog.LevelWarn, msg, []slog.Attr{
		slog.String("kind", "pool_wait"),
		slog.String("db_name", a.DBName),
		slog.String("reason", a.Reason),
		slog.Int("in_use", s.InUse),
		slog.Int("max_open", s.MaxOpenConnections),
		slog.Int64("wait_count", s.WaitCount),
		slog.String("mean_wait", round(a.MeanWait).String()),
		slog.String("since_return", round(a.SinceReturn).String()),
		slog.Any("holders", a.Holders),
		slog.Any("waiters", a.Waiters),
		slog.Bool("self_deadlock", a.SelfDeadlock),
	})
	m.callback(a)
}

func (m *Monitor) recovered(a PoolAlert) {
	msg := fmt.Sprintf("sqlwatch: pool recovered after %s, %d/%d connections in use", round(a.Duration), a.Stats.InUse, a.Stats.MaxOpenConnections)
	m.log(slog.LevelInfo, msg, []slog.Attr{
		slog.String("kind", "pool_wait"),
		slog.String("db_name", a.DBName),
		slog.String("duration", round(a.Duration).String()),
	})
	m.callback(a)
}

// log and callback call the application's logger and OnAlert as the
// watchdog does (see Tracker.guard): a panic is recovered and counted,
// and one that does not return holds Stop for stopGrace at most.
func (m *Monitor) log(level slog.Level, msg string, attrs []slog.Attr) {
	m.t.guardFor(m, m.stop, func() { m.cfg.Logger.LogAttrs(context.Background(), level, msg, attrs...) })
}

func (m *Monitor) callback(a PoolAlert) {
	if m.cfg.OnAlert == nil {
		return
	}
	m.t.guardFor(m, m.stop, func() { m.cfg.OnAlert(a) })
}

// holders lists the checked-out conns, oldest first.
func (m *Monitor) holders() []Holder {
	now := m.cfg.Now()
	hidden := m.t.returnsHidden()
	snaps := m.t.collect(func(r *Resource) bool { return r.kind == KindConn && !unseen(hidden, r) })
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].start.Before(snaps[j].start) })
	out := make([]Holder, 0, len(snaps))
	for i := range snaps {
		rep := m.t.describe(&snaps[i], now)
		out = append(out, Holder{
			Age: rep.Age, AgeText: round(rep.Age).String(), Origin: rep.Origin, Func: rep.Func,
			InTx: snaps[i].inTx, LastQuery: rep.LastQuery, Goroutine: snaps[i].goid,
			Attrs: rep.Attrs, Context: attrMap(rep.Attrs),
		})
	}
	return out
}

// waiters finds, in a dump of all goroutines, those blocked in
// database/sql's connection request (for a pgxpool pool: in puddle's
// acquire, on its semaphore or a connection being built).
func (m *Monitor) waiters() []Waiter {
	var out []Waiter
	for _, g := range gdump.Parse(m.cfg.Goroutines()) {
		waiting := false
		for _, f := range g.Frames {
			if m.pgx && isPuddleAcquire(f.Function) || !m.pgx && f.Function == "database/sql.(*DB).conn" {
				waiting = true
				break
			}
		}
		if !waiting || !strings.HasPrefix(g.State, "select") {
			continue
		}
		on := g.ConnDB
		if m.pgx {
			on = g.PgxPool
		}
		if m.db != "" && on != "" && on != m.db {
			continue // waits for another pool
		}
		w := Waiter{Goroutine: g.ID, State: g.State, funcs: map[string]bool{}}
		for _, f := range g.Frames {
			w.funcs[f.Function] = true
		}
		origin, app, ok := m.t.cfg.Filter.Split(g.Frames)
		if ok {
			w.Origin, w.Func = origin.Location(), origin.Function
		} else {
			w.Origin = "unknown"
		}
		w.Stack = frameStrings(app)
		out = append(out, w)
	}
	return out
}

// isPuddleAcquire reports whether fn is the function of puddle's pool
// (under pgxpool) in which an Acquire waits: its acquire, or the Acquire
// it is inlined into, as a goroutine dump prints a generic method
// ("github.com/jackc/puddle/v2.(*Pool[...]).acquire").
func isPuddleAcquire(fn string) bool {
	rest, ok := strings.CutPrefix(fn, "github.com/jackc/puddle/v2.(*Pool[")
	if !ok {
		return false
	}
	return strings.HasSuffix(rest, ").acquire") || strings.HasSuffix(rest, ").Acquire") ||
		strings.HasSuffix(rest, ").initResourceValue")
}
