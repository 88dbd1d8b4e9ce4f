package pgxwatch_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlwatch/sqlwatch/leak"
)

// TestStall: with MaxConns 1, one goroutine holds the conn and another
// waits in Acquire; the monitor's alert names both, and a recovery follows
// the release.
func TestStall(t *testing.T) {
	s := open(t, false, func(c *pgxpool.Config) { c.MaxConns = 1 })
	ctx := context.Background()
	alerts := make(chan leak.PoolAlert, 10)
	mon, err := s.w.NewMonitor(s.pool, leak.MonitorConfig{
		Interval: 20 * time.Millisecond, WaitLimit: 150 * time.Millisecond,
		Logger: discard, OnAlert: func(a leak.PoolAlert) { alerts <- a },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Stop()

	holderAt := nextLine()
	held, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waiterAt := make(chan string, 1)
	got := make(chan error, 1)
	go func() {
		waiterAt <- nextLine()
		c, err := s.pool.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		got <- err
	}()
	wantWaiter := <-waiterAt

	var a leak.PoolAlert
	select {
	case a = <-alerts:
	case <-time.After(5 * time.Second):
		t.Fatal("no pool alert within 5s")
	}
	if a.Reason != "stall" || a.Recovered {
		t.Errorf("alert %+v; want a stall", a)
	}
	if len(a.Holders) != 1 || a.Holders[0].Origin != holderAt {
		t.Errorf("holders %+v; want one at %s", a.Holders, holderAt)
	}
	if len(a.Waiters) != 1 || a.Waiters[0].Origin != wantWaiter {
		t.Errorf("waiters %+v; want one at %s", a.Waiters, wantWaiter)
	}
	if a.Stats.InUse != 1 || a.Stats.MaxOpenConnections != 1 {
		t.Errorf("stats %+v; want 1/1 in use", a.Stats)
	}
	held.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-alerts:
		if !r.Recovered {
			t.Errorf("got %+v; want the recovery", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no recovery within 5s")
	}
	if st := s.w.Stats(); st.PoolAlerts != 1 {
		t.Errorf("PoolAlerts %d; want 1", st.PoolAlerts)
	}
}

// TestNoAlertOnBusyPool: a saturated pool whose conns come back quickly
// raises no alert.
func TestNoAlertOnBusyPool(t *testing.T) {
	s := open(t, false, func(c *pgxpool.Config) { c.MaxConns = 2 })
	ctx := context.Background()
	alerts := make(chan leak.PoolAlert, 10)
	mon, err := s.w.NewMonitor(s.pool, leak.MonitorConfig{
		Interval: 20 * time.Millisecond, WaitLimit: 300 * time.Millisecond,
		Logger: discard, OnAlert: func(a leak.PoolAlert) { alerts <- a },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Stop()
	done := make(chan struct{})
	for range 6 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 40 {
				var n int
				if err := s.pool.QueryRow(ctx, "SELECT 1 FROM pg_sleep(0.005)").Scan(&n); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 6 {
		<-done
	}
	select {
	case a := <-alerts:
		t.Errorf("unexpected alert: %+v", a)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestUserTracerChained: the tracer set before Instrument still sees
// every call it implements.
func TestUserTracerChained(t *testing.T) {
	u := &userTracer{}
	s := open(t, false, func(c *pgxpool.Config) { c.ConnConfig.Tracer = u })
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	got := u.String()
	for _, want := range []string{"acquire-start", "acquire-end", "query-start SELECT 1", "query-end", "release"} {
		if !strings.Contains(got, want) {
			t.Errorf("user tracer saw %q; want %q in it", got, want)
		}
	}
}

type userTracer struct {
	mu  sync.Mutex
	log []string
}

func (u *userTracer) add(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.log = append(u.log, s)
}

func (u *userTracer) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.log, "; ")
}

func (u *userTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	u.add("query-start " + d.SQL)
	return ctx
}
func (u *userTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {
	u.add("query-end")
}
func (u *userTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	u.add("acquire-start")
	return ctx
}
func (u *userTracer) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {
	u.add("acquire-end")
}
func (u *userTracer) TraceRelease(*pgxpool.Pool, pgxpool.TraceReleaseData) { u.add("release") }
