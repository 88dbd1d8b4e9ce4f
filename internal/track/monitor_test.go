package track

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/gdump"
	"github.com/sqlwatch/sqlwatch/internal/goid"
)

// scripted feeds a Monitor the stats a test sets.
type scripted struct{ s sql.DBStats }

func (s *scripted) Stats() sql.DBStats { return s.s }

func newTestMonitor(t *testing.T, f *fixture, st *scripted, dump string) (*Monitor, *[]PoolAlert) {
	t.Helper()
	var alerts []PoolAlert
	m, err := newMonitor(f.t, MonitorConfig{
		Stats:      st.Stats,
		Now:        f.clock.Now,
		Goroutines: func() []byte { return []byte(dump) },
		OnAlert:    func(a PoolAlert) { alerts = append(alerts, a) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, &alerts
}

// waiterDump is a goroutine dump in which goroutine id waits for a
// connection; with live, the function that opened the test's holders
// (testing.tRunner, since frames of package leak are library frames) is
// still on its stack.
func waiterDump(id int64, live bool) string {
	tail := ""
	if live {
		tail = "testing.tRunner(0xc000003340, 0x5a1e48)\n\t/usr/local/go/src/testing/testing.go:2036 +0xea\n"
	}
	return fmt.Sprintf(`goroutine 1 [running]:
main.main()
	/app/main.go:10 +0x1d

goroutine %d [select, 2 minutes]:
database/sql.(*DB).conn(0xc0000f2000, {0x9b1c40, 0xc000012345}, 0x1)
	/usr/local/go/src/database/sql/sql.go:1365 +0x5a5
database/sql.(*DB).exec(0xc0000f2000, {0x9b1c40, 0xc000012345}, {0x8f0e51, 0x1c}, {0x0, 0x0, 0x0}, 0x60?)
	/usr/local/go/src/database/sql/sql.go:1714 +0x5d
example.com/shop/orders.(*Handler).Create(0xc000010000, {0x9b1c40, 0xc000012345})
	/home/dev/shop/orders/handler.go:57 +0x1a5
net/http.HandlerFunc.ServeHTTP(0xc000014000?, {0x9b2a00?, 0xc0000e0000?}, 0xc000118000?)
	/usr/local/go/src/net/http/server.go:2322 +0x29
%screated by net/http.(*Server).Serve in goroutine 1
	/usr/local/go/src/net/http/server.go:3454 +0x485

goroutine 99 [chan receive]:
database/sql.(*DB).connectionOpener(0xc0000f2000, {0x9b1c40, 0xc000012345})
	/usr/local/go/src/database/sql/sql.go:1261 +0x65
created by database/sql.OpenDB in goroutine 1
	/usr/local/go/src/database/sql/sql.go:841 +0x130
`, id, tail)
}

func TestMonitorStall(t *testing.T) {
	f := newFixture(t, Config{})
	a := f.t.Open(KindConn, 0)
	a.shard.mu.Lock()
	a.inTx = true // as a tx holding it would
	a.shard.mu.Unlock()
	a.Note("UPDATE stock SET n = n - 1")
	f.clock.add(time.Second)
	b := f.t.Open(KindConn, 0)
	st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2, InUse: 2}}
	me := goid.Get() // the holders were opened by this goroutine
	m, alerts := newTestMonitor(t, f, st, waiterDump(me, true))

	m.Check() // baseline
	f.clock.add(500 * time.Millisecond)
	st.s.WaitCount = 1
	m.Check() // a wait began: it is dated to this poll
	f.clock.add(time.Second)
	m.Check() // it has waited the limit, not more
	if len(*alerts) != 0 {
		t.Fatalf("alert before the limit: %+v", (*alerts)[0])
	}
	f.clock.add(time.Second)
	m.Check()
	f.clock.add(time.Second)
	m.Check() // the same episode: no second alert
	if len(*alerts) != 1 {
		t.Fatalf("got %d alerts; want 1", len(*alerts))
	}
	al := (*alerts)[0]
	if al.Reason != "stall" || al.DBName != "orders" || len(al.Holders) != 2 || len(al.Waiters) != 1 || al.SinceReturn != 2*time.Second {
		t.Fatalf("alert: %+v", al)
	}
	if !al.Holders[0].InTx || al.Holders[0].LastQuery != "UPDATE stock SET n = n - 1" || al.Holders[1].InTx || al.Holders[0].Age <= al.Holders[1].Age {
		t.Errorf("holders, oldest first: %+v", al.Holders)
	}
	w := al.Waiters[0]
	if w.Goroutine != me || w.Origin != "orders/handler.go:57" || w.State != "select, 2 minutes" || !w.Holds || !al.SelfDeadlock {
		t.Errorf("waiter: %+v (self-deadlock %v)", w, al.SelfDeadlock)
	}
	if len(w.Stack) != 3 || !strings.HasPrefix(w.Stack[0], "example.com/shop/orders.(*Handler).Create") {
		t.Errorf("waiter stack: %q", w.Stack)
	}
	if f.t.Stats().PoolAlerts != 1 {
		t.Errorf("alert counter: %d", f.t.Stats().PoolAlerts)
	}

	// The JSON line.
	lines := f.buf.lines()
	if len(lines) != 1 {
		t.Fatalf("got %d log lines", len(lines))
	}
	l := lines[0]
	msg := l["msg"].(string)
	if !strings.HasPrefix(msg, "sqlwatch: pool stalled: 2/2 connections in use, 1 goroutines waiting") || !strings.Contains(msg, "SELF-DEADLOCK") {
		t.Errorf("msg: %q", msg)
	}
	if l["kind"] != "pool_wait" || l["db_name"] != "orders" || l["self_deadlock"] != true {
		t.Errorf("fields: %v", l)
	}
	hs, _ := l["holders"].([]any)
	if len(hs) != 2 || hs[0].(map[string]any)["origin"] == nil || hs[0].(map[string]any)["in_tx"] != true {
		t.Errorf("holders: %v", l["holders"])
	}
	if ws, _ := l["waiters"].([]any); len(ws) != 1 || ws[0].(map[string]any)["origin"] != "orders/handler.go:57" {
		t.Errorf("waiters: %v", l["waiters"])
	}

	// A return ends the episode.
	f.t.Close(b)
	st.s.InUse = 1
	f.clock.add(time.Second)
	m.Check()
	if len(*alerts) != 2 || !(*alerts)[1].Recovered || (*alerts)[1].Duration != 2*time.Second {
		t.Fatalf("recovery: %+v", *alerts)
	}
	if l := f.buf.lines(); len(l) != 2 || l[1]["level"] != "INFO" || !strings.HasPrefix(l[1]["msg"].(string), "sqlwatch: pool recovered after 2s") {
		t.Errorf("recovery line: %v", l)
	}
}

func TestMonitorMeanWait(t *testing.T) {
	f := newFixture(t, Config{})
	st := &scripted{sql.DBStats{MaxOpenConnections: 10, InUse: 3}}
	m, alerts := newTestMonitor(t, f, st, "")
	m.Check()
	f.clock.add(time.Second)
	st.s.WaitCount, st.s.WaitDuration = 4, 2*time.Second // mean 500ms
	m.Check()
	if len(*alerts) != 0 {
		t.Fatalf("alert under the limit: %+v", *alerts)
	}
	f.clock.add(time.Second)
	st.s.WaitCount, st.s.WaitDuration = 6, 6*time.Second // mean 2s
	m.Check()
	if len(*alerts) != 1 || (*alerts)[0].Reason != "wait" || (*alerts)[0].MeanWait != 2*time.Second || (*alerts)[0].SelfDeadlock {
		t.Fatalf("got %+v; want one wait alert with a mean of 2s", *alerts)
	}
	// Recovery, then a new episode within the alert gap is not alerted.
	f.clock.add(time.Second)
	m.Check()
	f.clock.add(time.Second)
	st.s.WaitCount, st.s.WaitDuration = 7, 10*time.Second
	m.Check()
	if len(*alerts) != 2 || !(*alerts)[1].Recovered {
		t.Fatalf("got %+v; want the alert, its recovery and nothing more", *alerts)
	}
}

func TestMonitorConfigErrors(t *testing.T) {
	f := newFixture(t, Config{})
	if _, err := newMonitor(f.t, MonitorConfig{WaitLimit: -1}); err == nil {
		t.Error("a negative wait limit was accepted")
	}
	if _, err := NewMonitor(nil, MonitorConfig{}); err != ErrNotWatched {
		t.Errorf("nil db: got %v", err)
	}
}

// TestMonitorNoSelfDeadlockAfterTheHolderReturned: a goroutine that leaked
// a tx earlier (a keep-alive HTTP server goroutine) and now waits holds a
// conn, but does not wait for itself.
func TestMonitorNoSelfDeadlockAfterTheHolderReturned(t *testing.T) {
	f := newFixture(t, Config{})
	f.t.Open(KindConn, 0)
	st := &scripted{sql.DBStats{MaxOpenConnections: 1, OpenConnections: 1, InUse: 1, WaitCount: 1}}
	m, alerts := newTestMonitor(t, f, st, waiterDump(goid.Get(), false))
	m.Check()
	f.clock.add(2 * time.Second)
	m.Check()
	if len(*alerts) != 1 {
		t.Fatalf("got %d alerts; want 1 (a stall found through the goroutine dump)", len(*alerts))
	}
	if a := (*alerts)[0]; a.SelfDeadlock || !a.Waiters[0].Holds {
		t.Errorf("got self-deadlock %v, holds %v; want false, true", a.SelfDeadlock, a.Waiters[0].Holds)
	}
}

// TestMonitorStopDespiteBlockedCallback: an OnAlert that never returns
// holds Stop for stopGrace at most, and is counted as dropped.
func TestMonitorStopDespiteBlockedCallback(t *testing.T) {
	f := newFixture(t, Config{})
	var polls atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	var once sync.Once
	m, err := newMonitor(f.t, MonitorConfig{
		Interval: time.Millisecond,
		Now:      time.Now,
		// Every poll sees one more wait of an hour: a mean wait over
		// the limit, so the second poll alerts.
		Stats: func() sql.DBStats {
			n := polls.Add(1)
			return sql.DBStats{MaxOpenConnections: 1, OpenConnections: 1, InUse: 1, WaitCount: n, WaitDuration: time.Duration(n) * time.Hour}
		},
		Goroutines: func() []byte { return nil },
		OnAlert: func(PoolAlert) {
			once.Do(func() { close(entered) })
			<-release
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go m.run()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		m.Stop()
		t.Fatal("no alert within 5s")
	}
	dropped := f.t.Stats().Dropped
	start := time.Now()
	m.Stop()
	if d := time.Since(start); d > stopGrace+time.Second {
		t.Errorf("Stop took %v with OnAlert blocked; want about %v", d, stopGrace)
	}
	if got := f.t.Stats().Dropped; got != dropped+1 {
		t.Errorf("Stats.Dropped = %d after Stop; want %d (the blocked callback)", got, dropped+1)
	}
}

// burst replays, on scripted stats polled every 100ms, a pool of two
// conns idle for idle, then two 300ms transactions holding both while
// four quick queries wait 285ms each for them: correct code under a
// WaitLimit of 500ms.
type burst struct {
	f  *fixture
	st *scripted
	m  *Monitor
}

func (b *burst) poll(d time.Duration) {
	for step := 100 * time.Millisecond; d > 0; d -= step {
		b.f.clock.add(step)
		b.m.Check()
	}
}

func (b *burst) run(idle time.Duration) {
	b.poll(idle)
	tx1, tx2 := b.f.t.Open(KindConn, 0), b.f.t.Open(KindConn, 0)
	b.st.s.InUse, b.st.s.OpenConnections = 2, 2
	b.st.s.WaitCount += 4 // the queries begin to wait
	b.poll(200 * time.Millisecond)
	// The transactions end at 300ms; the queries take their conns
	// (285ms of wait each), run and return them.
	b.f.t.Close(tx1)
	b.f.t.Close(tx2)
	for range 4 {
		b.f.t.Close(b.f.t.Open(KindConn, 0))
	}
	b.st.s.WaitDuration += 4 * 285 * time.Millisecond
	b.st.s.InUse = 0
	b.poll(200 * time.Millisecond)
}

// TestMonitorNoStallAfterIdle: a burst after an idle period is no stall
// (nobody waited the limit) and logs nothing, burst after burst.
func TestMonitorNoStallAfterIdle(t *testing.T) {
	f := newFixture(t, Config{})
	st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2}}
	m, alerts := newTestMonitor(t, f, st, waiterDump(99, false))
	m.cfg.WaitLimit, m.cfg.AlertGap = 500*time.Millisecond, time.Second
	m.Check()
	b := &burst{f: f, st: st, m: m}
	for range 3 {
		b.run(1500 * time.Millisecond)
	}
	if len(*alerts) != 0 {
		t.Errorf("got %d alerts and recoveries; want none. First: %+v", len(*alerts), (*alerts)[0])
	}
	if l := f.buf.lines(); len(l) != 0 {
		t.Errorf("got %d log lines; want none: %v", len(l), l)
	}
}

// TestMonitorWaitCutShortIsNoStall: holders that do not return, and a
// waiter that gives up (its context) before the limit, then none waits:
// nobody waited the limit.
func TestMonitorWaitCutShortIsNoStall(t *testing.T) {
	f := newFixture(t, Config{})
	f.t.Open(KindConn, 0)
	f.t.Open(KindConn, 0)
	st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2, InUse: 2}}
	m, alerts := newTestMonitor(t, f, st, waiterDump(99, false))
	m.cfg.WaitLimit = 500 * time.Millisecond
	m.Check()
	f.clock.add(100 * time.Millisecond)
	st.s.WaitCount = 1
	m.Check()
	f.clock.add(100 * time.Millisecond)
	st.s.WaitDuration = 150 * time.Millisecond
	m.Check()
	for range 5 {
		f.clock.add(100 * time.Millisecond)
		m.Check()
	}
	// The dump fallback: no wait began, so a waiter in the dump must be
	// one begun before the wait ended; this dump has none.
	m.cfg.Goroutines = func() []byte { return nil }
	for range 10 {
		f.clock.add(100 * time.Millisecond)
		m.Check()
	}
	if len(*alerts) != 0 {
		t.Errorf("got %+v; want no alert", *alerts)
	}
}

// stall replays a stall on scripted stats: both conns held, a waiter
// waiting from the next poll on, for long; then one holder returns and
// the waiter is served.
func stall(f *fixture, st *scripted, m *Monitor) {
	h1, h2 := f.t.Open(KindConn, 0), f.t.Open(KindConn, 0)
	st.s.InUse = 2
	f.clock.add(100 * time.Millisecond)
	m.Check()
	st.s.WaitCount++
	for range 10 {
		f.clock.add(100 * time.Millisecond)
		m.Check()
	}
	f.t.Close(h1)
	f.t.Close(h2)
	st.s.WaitDuration += time.Second
	st.s.InUse = 0
	for range 3 {
		f.clock.add(100 * time.Millisecond)
		m.Check()
	}
}

// TestMonitorRecoveryOnlyWhenAlerted: an episode within the alert gap of
// the last alert is neither alerted nor recovered; each alerted one has
// exactly one recovery.
func TestMonitorRecoveryOnlyWhenAlerted(t *testing.T) {
	f := newFixture(t, Config{})
	st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2}}
	m, alerts := newTestMonitor(t, f, st, waiterDump(99, false))
	m.cfg.WaitLimit, m.cfg.AlertGap = 500*time.Millisecond, 3*time.Second
	m.Check()
	stall(f, st, m) // alerted
	stall(f, st, m) // within the gap
	f.clock.add(3 * time.Second)
	m.Check()
	stall(f, st, m) // alerted
	var got []string
	for _, a := range *alerts {
		if a.Recovered {
			got = append(got, "recovered")
		} else {
			got = append(got, a.Reason)
		}
	}
	if want := "stall recovered stall recovered"; strings.Join(got, " ") != want {
		t.Errorf("got %q; want %q", strings.Join(got, " "), want)
	}
	if l := f.buf.lines(); len(l) != 4 {
		t.Errorf("got %d log lines; want 4", len(l))
	}
	if n := f.t.Stats().PoolAlerts; n != 2 {
		t.Errorf("PoolAlerts = %d; want 2", n)
	}
}

// TestMonitorStallBegunBeforeAReturn: a waiter that began before the
// last return and is still waiting (the return served another) is found
// through the goroutine dump once the limit has passed since that return.
func TestMonitorStallBegunBeforeAReturn(t *testing.T) {
	f := newFixture(t, Config{})
	f.t.Open(KindConn, 0)
	r := f.t.Open(KindConn, 0)
	st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2, InUse: 2, WaitCount: 2}}
	m, alerts := newTestMonitor(t, f, st, waiterDump(99, false))
	m.cfg.WaitLimit = 500 * time.Millisecond
	m.Check()
	// One of the two waiters is served: a return, a wait ended.
	f.t.Close(r)
	f.t.Open(KindConn, 0)
	st.s.WaitDuration = 200 * time.Millisecond
	f.clock.add(100 * time.Millisecond)
	m.Check()
	for range 5 {
		f.clock.add(100 * time.Millisecond)
		m.Check()
	}
	if len(*alerts) != 0 {
		t.Fatalf("alert %s after the return; want none before the limit: %+v", 500*time.Millisecond, *alerts)
	}
	f.clock.add(100 * time.Millisecond)
	m.Check()
	if len(*alerts) != 1 || (*alerts)[0].Reason != "stall" || (*alerts)[0].SinceReturn != 600*time.Millisecond {
		t.Fatalf("got %+v; want one stall, none returned for 600ms", *alerts)
	}
}

// TestMonitorMeanOfWaitsAcrossPolls: waits that begin before a poll and
// end after it are averaged over their own count (database/sql counts a
// wait when it begins, its duration when it ends).
func TestMonitorMeanOfWaitsAcrossPolls(t *testing.T) {
	f := newFixture(t, Config{})
	st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2, InUse: 1}}
	m, alerts := newTestMonitor(t, f, st, "")
	m.cfg.WaitLimit = 500 * time.Millisecond
	m.Check()
	for range 3 {
		// Four waits of 285ms begin: the pool is full at the poll.
		f.clock.add(100 * time.Millisecond)
		f.t.Close(f.t.Open(KindConn, 0))
		st.s.InUse, st.s.WaitCount = 2, st.s.WaitCount+4
		m.Check()
		// They end before the next poll, where no wait begins.
		f.clock.add(100 * time.Millisecond)
		f.t.Close(f.t.Open(KindConn, 0))
		st.s.InUse, st.s.WaitDuration = 1, st.s.WaitDuration+4*285*time.Millisecond
		m.Check()
	}
	if len(*alerts) != 0 {
		t.Errorf("got %+v; want no alert (mean wait 285ms)", (*alerts)[0])
	}
	// The same with waits of 2s each is alerted, with their mean.
	f.clock.add(100 * time.Millisecond)
	st.s.InUse, st.s.WaitCount = 2, st.s.WaitCount+4
	f.t.Close(f.t.Open(KindConn, 0))
	m.Check()
	f.clock.add(100 * time.Millisecond)
	f.t.Close(f.t.Open(KindConn, 0))
	st.s.InUse, st.s.WaitDuration = 1, st.s.WaitDuration+8*time.Second
	m.Check()
	if len(*alerts) != 1 || (*alerts)[0].Reason != "wait" || (*alerts)[0].MeanWait != 2*time.Second {
		t.Errorf("got %+v; want one wait alert with a mean of 2s", *alerts)
	}
}

// TestMonitorOtherPoolsWaitersNoStall: a full pool that nobody waits for,
// while the goroutine dump shows a goroutine waiting in another pool's
// (*DB).conn, is no stall, and that waiter is not listed; the same dump
// with this pool's address is one.
func TestMonitorOtherPoolsWaitersNoStall(t *testing.T) {
	for _, tc := range []struct {
		db    string
		stall bool
	}{{"0xc0000aa000", false}, {"0xc0000f2000", true}} {
		f := newFixture(t, Config{})
		f.t.Open(KindConn, 0)
		f.t.Open(KindConn, 0)
		st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2, InUse: 2}}
		m, alerts := newTestMonitor(t, f, st, waiterDump(99, false))
		m.db = tc.db
		m.cfg.WaitLimit = 500 * time.Millisecond
		m.Check()
		for range 10 {
			f.clock.add(200 * time.Millisecond)
			m.Check()
		}
		if got := len(*alerts) == 1 && (*alerts)[0].Reason == "stall"; got != tc.stall {
			t.Errorf("pool %s, waiter of pool 0xc0000f2000: alerts %+v; want a stall: %v", tc.db, *alerts, tc.stall)
		}
		if n := len(m.waiters()); n != map[bool]int{false: 0, true: 1}[tc.stall] {
			t.Errorf("pool %s: %d waiters listed", tc.db, n)
		}
	}
}

func TestParseGoroutinesConnReceiver(t *testing.T) {
	gs := gdump.Parse([]byte(waiterDump(7, false)))
	var got []string
	for _, g := range gs {
		got = append(got, g.ConnDB)
	}
	if len(gs) != 3 || got[1] != "0xc0000f2000" || got[0] != "" || got[2] != "" {
		t.Fatalf("receivers %q; want the waiter's 0xc0000f2000 only", got)
	}
}

// pgxWaiterDump is a goroutine dump (the shape runtime.Stack prints) with
// one goroutine waiting in pgxpool's Acquire of pool 0xc000180000, and one
// in database/sql's (*DB).conn of pool 0xc0000f2000.
const pgxWaiterDump = `goroutine 21 [select]:
golang.org/x/sync/semaphore.(*Weighted).Acquire(0xc0001a2000, {0xb6c8f0, 0xf4c0c0}, 0x1)
	/root/go/pkg/mod/golang.org/x/sync@v0.24.0/semaphore/semaphore.go:74 +0x3b4
github.com/jackc/puddle/v2.(*Pool[...]).acquire(0xb8a340, {0xb6c8f0, 0xf4c0c0})
	/root/go/pkg/mod/github.com/jackc/puddle/v2@v2.2.3/pool.go:361 +0x1b8
github.com/jackc/puddle/v2.(*Pool[...]).Acquire(0xb8a340?, {0xb6c8f0?, 0xf4c0c0?})
	/root/go/pkg/mod/github.com/jackc/puddle/v2@v2.2.3/pool.go:349 +0xa5
github.com/jackc/pgx/v5/pgxpool.(*Pool).Acquire(0xc000180000, {0xb6c8f0, 0xf4c0c0})
	/root/go/pkg/mod/github.com/jackc/pgx/v5@v5.12.0/pgxpool/pool.go:637 +0x1b2
example.com/app/store.(*Store).Order(0xc00001e0f0)
	/src/app/store/orders.go:41 +0x45
created by example.com/app.main in goroutine 1
	/src/app/main.go:20 +0x9a

goroutine 22 [select]:
database/sql.(*DB).conn(0xc0000f2000, {0xb6c8f0, 0xf4c0c0}, 0x1)
	/usr/local/go/src/database/sql/sql.go:1371 +0x5a5
example.com/app/store.(*Store).Legacy(0xc00001e0f0)
	/src/app/store/legacy.go:12 +0x45
created by example.com/app.main in goroutine 1
	/src/app/main.go:21 +0x9a
`

// TestPgxWaiters: a pgxpool pool's monitor lists the goroutines waiting in
// its own Acquire, not database/sql's waiters nor another pgxpool's.
func TestPgxWaiters(t *testing.T) {
	for _, tc := range []struct {
		pool string
		want int
	}{{"0xc000180000", 1}, {"0xc000990000", 0}} {
		f := newFixture(t, Config{})
		st := &scripted{sql.DBStats{MaxOpenConnections: 1, InUse: 1}}
		m, _ := newTestMonitor(t, f, st, pgxWaiterDump)
		m.db, m.pgx = tc.pool, true
		ws := m.waiters()
		if len(ws) != tc.want {
			t.Fatalf("pool %s: waiters %+v; want %d", tc.pool, ws, tc.want)
		}
		if tc.want == 1 && (ws[0].Goroutine != 21 || ws[0].Origin != "store/orders.go:41") {
			t.Errorf("waiter %+v; want goroutine 21 at store/orders.go:41", ws[0])
		}
	}
	gs := gdump.Parse([]byte(pgxWaiterDump))
	if len(gs) != 2 || gs[0].PgxPool != "0xc000180000" || gs[1].PgxPool != "" || gs[1].ConnDB != "0xc0000f2000" {
		t.Errorf("parsed %+v", gs)
	}
}
