package driver_test

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// probeConnector counts the conns database/sql's opener goroutine opens
// (for a waiter or the idle pool) and can make them slow.
type probeConnector struct {
	sqldriver.Connector
	delay  atomic.Int64 // nanoseconds an opener's Connect sleeps first
	opener atomic.Int64 // conns opened by the opener goroutine
}

func (c *probeConnector) Connect(ctx context.Context) (sqldriver.Conn, error) {
	buf := make([]byte, 8192)
	if strings.Contains(string(buf[:runtime.Stack(buf, false)]), "database/sql.(*DB).connectionOpener") {
		time.Sleep(time.Duration(c.delay.Load()))
		defer c.opener.Add(1)
	}
	return c.Connector.Connect(ctx)
}

// dsnConnector is a connector for a driver without DriverContext.
type dsnConnector struct {
	d   sqldriver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (sqldriver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() sqldriver.Driver                        { return c.d }

// openFresh opens a pool on b through sqlwatch's NewConnector around a
// probeConnector, with the thresholds of open, and opens no conn: the
// first checkout gets a brand-new one.
func openFresh(t *testing.T, b backend) (*sql.DB, reports, *probeConnector) {
	t.Helper()
	dsn := b.dsn(t)
	raw, err := sql.Open(b.inner, dsn)
	if err != nil {
		t.Fatal(err)
	}
	d := raw.Driver()
	raw.Close()
	var inner sqldriver.Connector = dsnConnector{d, dsn}
	if dc, ok := d.(sqldriver.DriverContext); ok {
		if inner, err = dc.OpenConnector(dsn); err != nil {
			t.Fatal(err)
		}
	}
	probe := &probeConnector{Connector: inner}
	ch := make(reports, 100)
	c, err := driver.NewConnector(probe,
		driver.WithThreshold(leak.KindTx, 300*time.Millisecond),
		driver.WithThreshold(leak.KindConn, time.Second),
		driver.WithThreshold(leak.KindRows, 300*time.Millisecond),
		driver.WithThreshold(leak.KindStmt, 300*time.Millisecond),
		driver.WithInterval(50*time.Millisecond),
		driver.WithReportFunc(func(r leak.Report) { ch <- r }),
		driver.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, ch, probe
}

// gateT records what the gate reports.
type gateT struct {
	mu   sync.Mutex
	errs []string
}

func (g *gateT) Error(args ...any) {
	g.mu.Lock()
	g.errs = append(g.errs, fmt.Sprint(args...))
	g.mu.Unlock()
}

func (g *gateT) text() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.errs, "\n")
}

// TestFreshConnCheckoutStartsAtTake: on a brand-new conn, the checkout
// starts where the application took it (DB.Conn, BeginTx, Query), not at
// its first statement, and a *sql.Conn never used is a leak like any
// other.
func TestFreshConnCheckoutStartsAtTake(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch, _ := openFresh(t, b)
		db.SetMaxIdleConns(0) // every checkout below gets a brand-new conn
		ctx := context.Background()

		unused := nextLine()
		c1, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := ch.wait(t, leak.KindConn, false)
		checkOrigin(t, r, unused)
		if r.Statements != 0 {
			t.Errorf("statements: got %d; want 0", r.Statements)
		}
		c1.Close()
		checkOrigin(t, ch.wait(t, leak.KindConn, true), unused)

		used := nextLine()
		c2, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c2.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		r = ch.wait(t, leak.KindConn, false)
		checkOrigin(t, r, used)
		if r.Statements != 1 || r.LastQuery != "SELECT 1" {
			t.Errorf("statements, last query: got %d, %q; want 1, SELECT 1", r.Statements, r.LastQuery)
		}
		c2.Close()
		checkOrigin(t, ch.wait(t, leak.KindConn, true), used)

		begin := nextLine()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkOrigin(t, ch.wait(t, leak.KindTx, false), begin)
		ch.none(t, leak.KindConn) // the tx's conn is not reported a second time
		tx.Rollback()

		query := nextLine()
		rows, err := db.QueryContext(ctx, "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		checkOrigin(t, ch.wait(t, leak.KindRows, false), query)
		ch.none(t, leak.KindConn)
		rows.Close()
		if n := driver.TrackerOf(db).OpenCount(leak.KindConn); n != 0 {
			t.Errorf("conns still checked out: %d", n)
		}
	})
}

// TestFreshConnSeenByGate: the gate lists a *sql.Conn taken on a
// brand-new conn and not used, and nothing once it is closed.
func TestFreshConnSeenByGate(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, _, _ := openFresh(t, b)
		ctx := context.Background()
		g := &gateT{}
		done := leak.Check(g, leak.Pool(db), leak.RetryFor(50*time.Millisecond))
		line := nextLine()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done()
		if got := g.text(); !strings.Contains(got, "[conn]") || !strings.Contains(got, line) {
			t.Errorf("gate: got %q; want the conn taken at %s", got, line)
		}
		conn.Close()
		g = &gateT{}
		leak.VerifyNone(g, leak.Pool(db), leak.RetryFor(time.Second))
		if got := g.text(); got != "" {
			t.Errorf("gate after Close: %s", got)
		}
	})
}

// TestFreshConnCorrectCodeSilent: correct code on new conns gives no
// report and passes the gate: a ping and a *sql.Conn closed on a fresh
// pool, a warm-up, a waiter handed the opener goroutine's new conn, and
// an opener's conn that goes to the idle pool because its waiter gave
// up.
func TestFreshConnCorrectCodeSilent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch, probe := openFresh(t, b)
		ctx := context.Background()
		g := &gateT{}
		done := leak.Check(g, leak.Pool(db), leak.RetryFor(2*time.Second))
		var n int

		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()

		// Warm-up: four conns at once, kept idle.
		db.SetMaxIdleConns(4)
		var conns []*sql.Conn
		for range 4 {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
			t.Fatal(err)
		}

		// One conn at most: a waiter, and the conn it waits for discarded
		// as bad, makes the opener goroutine open one for it.
		db.SetMaxOpenConns(1)
		waitCount := func() int64 { return db.Stats().WaitCount }
		handOver := func(wctx context.Context, afterRelease func()) error {
			held, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := waitCount()
			res := make(chan error, 1)
			go func() {
				var n int
				res <- db.QueryRowContext(wctx, "SELECT 1").Scan(&n)
			}()
			waitFor(t, func() bool { return waitCount() > before })
			// The opener is asked for a conn before Raw returns.
			held.Raw(func(any) error { return sqldriver.ErrBadConn })
			afterRelease()
			return <-res
		}
		if err := handOver(ctx, func() {}); err != nil {
			t.Fatalf("waiter: %v", err)
		}
		if probe.opener.Load() != 1 {
			t.Fatalf("the opener goroutine opened %d conns; want 1", probe.opener.Load())
		}

		// The same, but the waiter gives up before the opener's conn is
		// ready: it goes to the idle pool.
		probe.delay.Store(int64(500 * time.Millisecond))
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := handOver(wctx, cancel); !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter: got %v; want it cancelled", err)
		}
		waitFor(t, func() bool { return probe.opener.Load() == 2 && db.Stats().Idle == 1 })
		if n := driver.TrackerOf(db).OpenCount(leak.KindConn); n != 0 {
			t.Errorf("conns checked out with the pool idle: %d", n)
		}
		time.Sleep(1200 * time.Millisecond) // past the conn threshold
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
			t.Fatal(err)
		}

		done()
		if got := g.text(); got != "" {
			t.Errorf("gate: %s", got)
		}
		for {
			select {
			case r := <-ch:
				t.Errorf("unexpected report: %s %s released=%v", r.Kind, r.Origin, r.Released)
				continue
			default:
			}
			break
		}
	})
}
