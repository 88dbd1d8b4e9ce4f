package leak

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	a.setInTx(true)
	a.Note("UPDATE stock SET n = n - 1")
	f.clock.add(time.Second)
	b := f.t.Open(KindConn, 0)
	st := &scripted{sql.DBStats{MaxOpenConnections: 2, OpenConnections: 2, InUse: 2}}
	me := goid.Get() // the holders were opened by this goroutine
	m, alerts := newTestMonitor(t, f, st, waiterDump(me, true))

	m.Check() // baseline
	f.clock.add(500 * time.Millisecond)
	st.s.WaitCount = 1
	m.Check() // waiting, but a return was seen less than the limit ago
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
	if al.Reason != "stall" || al.DBName != "orders" || len(al.Holders) != 2 || len(al.Waiters) != 1 {
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
