package driver_test

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/testutil"
	"github.com/sqlwatch/sqlwatch/leak"
)

// watched is a pool-wait monitor on a real pool, with what it said.
type watched struct {
	mon    *leak.Monitor
	log    *testutil.LockedBuffer
	mu     sync.Mutex
	alerts []leak.PoolAlert
	got    chan struct{} // a value per alert or recovery
}

// watch starts a monitor polling db every 50ms with a wait limit of
// 500ms and an alert gap of 10ms (so that any episode is alerted), the
// limits of the idle-then-burst scenario; it is stopped with the test.
func watch(t *testing.T, db *sql.DB) *watched {
	t.Helper()
	w := &watched{log: &testutil.LockedBuffer{}, got: make(chan struct{}, 100)}
	mon, err := leak.NewMonitor(db, leak.MonitorConfig{
		Interval:  50 * time.Millisecond,
		WaitLimit: 500 * time.Millisecond,
		AlertGap:  10 * time.Millisecond,
		Logger:    slog.New(slog.NewJSONHandler(w.log, nil)),
		OnAlert: func(a leak.PoolAlert) {
			w.mu.Lock()
			w.alerts = append(w.alerts, a)
			w.mu.Unlock()
			w.got <- struct{}{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.mon = mon
	t.Cleanup(mon.Stop)
	return w
}

func (w *watched) said() []leak.PoolAlert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]leak.PoolAlert(nil), w.alerts...)
}

// lines are the monitor's log lines.
func (w *watched) lines() []string {
	return strings.FieldsFunc(w.log.String(), func(r rune) bool { return r == '\n' })
}

// next waits for the next alert or recovery, failing the test after 5s.
func (w *watched) next(t *testing.T) leak.PoolAlert {
	t.Helper()
	select {
	case <-w.got:
		a := w.said()
		return a[len(a)-1]
	case <-time.After(5 * time.Second):
		t.Fatal("no pool alert or recovery within 5s")
		return leak.PoolAlert{}
	}
}

// warm opens n conns and puts them back in the pool, so that the next
// checkouts reuse them.
func warm(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	ctx := context.Background()
	var conns []*sql.Conn
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestMonitorBurstAfterIdleRealDB: a pool of two idle for 1.5s, then two
// 300ms transactions fill it and four quick queries wait for them (about
// 285ms each, under the 500ms limit), twice. Correct code: no alert, no
// recovery line.
func TestMonitorBurstAfterIdleRealDB(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, _ := open(t, b)
		db.SetMaxOpenConns(2)
		warm(t, db, 2)
		w := watch(t, db)
		ctx := context.Background()
		for range 2 {
			time.Sleep(1500 * time.Millisecond)
			var wg sync.WaitGroup
			errs := make(chan error, 6)
			for range 2 {
				wg.Go(func() {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						errs <- err
						return
					}
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
						errs <- err
					}
					time.Sleep(300 * time.Millisecond)
					if err := tx.Commit(); err != nil {
						errs <- err
					}
				})
			}
			time.Sleep(15 * time.Millisecond)
			for range 4 {
				wg.Go(func() {
					qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					var n int
					if err := db.QueryRowContext(qctx, "SELECT 1").Scan(&n); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond) // a few more polls
		w.mon.Stop()
		st := db.Stats()
		if st.WaitCount < 8 {
			t.Fatalf("WaitCount = %d; want at least 8 (four waits a burst): the scenario did not run as meant", st.WaitCount)
		}
		if mean := st.WaitDuration / time.Duration(st.WaitCount); mean >= 500*time.Millisecond {
			t.Fatalf("mean wait %v; the scenario's waits must stay under the 500ms limit", mean)
		}
		if a := w.said(); len(a) != 0 {
			t.Errorf("got %d alerts and recoveries; want none. First: %+v", len(a), a[0])
		}
		if l := w.lines(); len(l) != 0 {
			t.Errorf("got log lines; want none:\n%s", strings.Join(l, "\n"))
		}
	})
}

// TestMonitorStallRealDB: two transactions hold the pool of two and do
// not end; a query waits beyond the limit. One alert names both holders
// and the waiter; once the holders end, one recovery.
func TestMonitorStallRealDB(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, _ := open(t, b)
		db.SetMaxOpenConns(2)
		warm(t, db, 2)
		w := watch(t, db)
		ctx := context.Background()
		line1 := nextLine()
		tx1, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		line2 := nextLine()
		tx2, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx1.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := tx2.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		waiterLine := nextLine()
		go func() { waited <- db.QueryRowContext(qctx, "SELECT 1").Scan(new(int)) }()
		a := w.next(t)
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("alert %v after the wait began; want after the 500ms limit", d)
		}
		if a.Recovered || a.Reason != "stall" || a.SelfDeadlock {
			t.Fatalf("got %+v; want a stall", a)
		}
		if a.SinceReturn <= 500*time.Millisecond || a.SinceReturn > 5*time.Second {
			t.Errorf("SinceReturn = %v; want over the 500ms limit and about the wait", a.SinceReturn)
		}
		var origins []string
		for _, h := range a.Holders {
			origins = append(origins, h.Origin)
		}
		if len(origins) != 2 || !(origins[0] == line1 && origins[1] == line2) {
			t.Errorf("holders %q; want %q, %q (oldest first)", origins, line1, line2)
		}
		found := false
		for _, wt := range a.Waiters {
			found = found || wt.Origin == waiterLine
		}
		if !found {
			t.Errorf("waiters %+v; want one at %s", a.Waiters, waiterLine)
		}
		time.Sleep(300 * time.Millisecond) // the same episode: no second alert
		if got := len(w.said()); got != 1 {
			t.Fatalf("got %d alerts; want 1", got)
		}
		if err := tx1.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := tx2.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-waited; err != nil {
			t.Fatalf("the waiter: %v", err)
		}
		if r := w.next(t); !r.Recovered {
			t.Fatalf("got %+v; want the recovery", r)
		}
		time.Sleep(300 * time.Millisecond)
		w.mon.Stop()
		if a := w.said(); len(a) != 2 {
			t.Errorf("got %d alerts and recoveries; want the alert and its recovery: %+v", len(a), a)
		}
		if l := w.lines(); len(l) != 2 || !strings.Contains(l[0], `"reason":"stall"`) || !strings.Contains(l[1], "pool recovered") {
			t.Errorf("log lines:\n%s", strings.Join(l, "\n"))
		}
	})
}

// TestMonitorOtherPoolWaiterRealDB: pool A is full with nobody waiting
// for it (two txs held, correct), while a goroutine waits for pool B: A's
// monitor raises nothing, and B's names its waiter.
func TestMonitorOtherPoolWaiterRealDB(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		dbA, _ := open(t, b)
		dbB, _ := open(t, b)
		for _, db := range []*sql.DB{dbA, dbB} {
			db.SetMaxOpenConns(1)
			warm(t, db, 1)
		}
		wA := watch(t, dbA)
		wB := watch(t, dbB)
		ctx := context.Background()
		txA, err := dbA.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer txA.Rollback()
		txB, err := dbB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		waited := make(chan error, 1)
		waiterLine := nextLine()
		go func() { waited <- dbB.QueryRowContext(qctx, "SELECT 1").Scan(new(int)) }()
		a := wB.next(t) // pool B stalls
		if a.Reason != "stall" {
			t.Fatalf("pool B: %+v; want a stall", a)
		}
		if len(a.Waiters) != 1 || a.Waiters[0].Origin != waiterLine {
			t.Errorf("pool B's waiters %+v; want one, at %s", a.Waiters, waiterLine)
		}
		time.Sleep(time.Second) // pool A: full for twice the limit, nobody waiting for it
		if got := wA.said(); len(got) != 0 {
			t.Errorf("pool A, full with nobody waiting: %d alerts, first %+v", len(got), got[0])
		}
		if err := txB.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
	})
}
