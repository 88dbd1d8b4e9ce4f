package driver_test

import (
	"cmp"
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"modernc.org/sqlite"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/errclass"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
)

// The stress test's settings.
const (
	stressWorkers   = 500
	stressMaxConns  = 8
	stressThreshold = 10 * time.Second // far above any healthy operation
	stressKillEvery = 250 * time.Millisecond
	stressRecovery  = 10 * time.Second // the pool must answer within this once faults stop
)

// stressOps names the operations the workers mix.
var stressOps = [...]string{
	"exec", "query_early_close", "query_late_close", "tx_commit", "tx_rollback",
	"conn", "prepared", "shared_stmt", "cancel_query", "cancel_rows", "cancel_tx", "timeout",
}

// TestStress runs 500 goroutines against each database for
// SQLWATCH_STRESS (a duration, e.g. 30s), mixing every kind of operation
// on a pool of 8 conns, while (on MariaDB and PostgreSQL) server sessions
// are killed a few times a second and, with SQLWATCH_STRESS_RESTART=1, the
// server is restarted once. Afterwards nothing may be left open, tracked
// or in the gauges, no leak may have been reported, no goroutine of
// sqlwatch may be left after DB.Close, and the heap must be back near its
// starting size. Run it with -race -v to see the figures:
//
//	SQLWATCH_STRESS=30s SQLWATCH_STRESS_RESTART=1 go test -race -count=1 -run TestStress -timeout 20m -v ./driver
func TestStress(t *testing.T) {
	v := os.Getenv("SQLWATCH_STRESS")
	if v == "" {
		t.Skip("set SQLWATCH_STRESS to a duration (e.g. 30s) to run the stress test; SQLWATCH_STRESS_RESTART=1 also restarts the servers")
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur <= 0 {
		t.Fatalf("SQLWATCH_STRESS=%q: want a positive duration such as 30s", v)
	}
	restart := os.Getenv("SQLWATCH_STRESS_RESTART") == "1"
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { stress(t, b, dur, restart) })
	}
}

// stressCounts gathers what the workers and the fault injector saw.
type stressCounts struct {
	ops      [len(stressOps)]atomic.Int64
	mu       sync.Mutex
	errs     map[string]int64  // errors seen by the application, by class
	examples map[string]string // one message per class
	typed    atomic.Int64      // errors that carry the driver's own type
	kills    map[string]int64  // sessions killed, by server state
	restarts []time.Duration
	reports  []leak.Report
	misuse   map[string]int64 // misuse reports logged, by kind
}

func (s *stressCounts) err(err error) {
	if err == nil {
		return
	}
	cl := errclass.Classify(err).String()
	var (
		me *mysql.MySQLError
		pe *pq.Error
		ge *pgconn.PgError
		se *sqlite.Error
	)
	if errors.As(err, &me) || errors.As(err, &pe) || errors.As(err, &ge) || errors.As(err, &se) {
		s.typed.Add(1)
	}
	s.mu.Lock()
	s.errs[cl]++
	if _, ok := s.examples[cl]; !ok {
		msg := err.Error()
		if len(msg) > 100 {
			msg = msg[:100] + "…"
		}
		s.examples[cl] = msg
	}
	s.mu.Unlock()
}

func formatCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// idConnector records the server's id of every conn it opens
// (MariaDB's CONNECTION_ID()), so that the fault injector kills only the
// sessions of the pool under test, never those of other tests running on
// the same server.
type idConnector struct {
	sqldriver.Connector
	mu  sync.Mutex
	ids map[int64]bool
}

func (c *idConnector) Connect(ctx context.Context) (sqldriver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if q, ok := conn.(sqldriver.QueryerContext); ok {
		if rows, err := q.QueryContext(ctx, "SELECT CONNECTION_ID()", nil); err == nil {
			v := make([]sqldriver.Value, 1)
			if rows.Next(v) == nil {
				var id int64
				switch x := v[0].(type) {
				case int64:
					id = x
				case uint64:
					id = int64(x)
				case []byte:
					id, _ = strconv.ParseInt(string(x), 10, 64)
				}
				c.mu.Lock()
				c.ids[id] = true
				c.mu.Unlock()
			}
			rows.Close()
		}
	}
	return conn, nil
}

func (c *idConnector) has(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[id]
}

func stress(t *testing.T, b backend, dur time.Duration, restart bool) {
	dsn := b.dsn(t)
	server := b.name != "sqlite"
	pg := b.name == "postgres" || b.name == "pgx"
	adminDSN := dsn
	appName := fmt.Sprintf("sqlwatch_stress_%d_%s", os.Getpid(), b.name)
	if pg {
		// PostgreSQL shows the application_name of each session: the
		// fault injector kills only this pool's sessions.
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", appName)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	if b.name == "sqlite" {
		dsn += "&_pragma=journal_mode(WAL)"
	}

	// The baseline, before the pool exists.
	ignore := goleak.IgnoreCurrent()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapStart := ms.HeapInuse
	goroutinesStart := runtime.NumGoroutine()

	c := &stressCounts{errs: map[string]int64{}, examples: map[string]string{}, kills: map[string]int64{}, misuse: map[string]int64{}}
	opts := []driver.Option{
		driver.WithDBName("stress-" + b.name),
		driver.WithLogger(slog.New(slog.DiscardHandler)),
		driver.WithThreshold(leak.KindTx, stressThreshold),
		driver.WithThreshold(leak.KindConn, stressThreshold),
		driver.WithThreshold(leak.KindRows, stressThreshold),
		// Prepared statements keep their default (not reported): the
		// shared *sql.Stmt lives as long as the test, as in a real
		// application.
		driver.WithReportFunc(func(r leak.Report) {
			if !r.Released {
				c.mu.Lock()
				c.reports = append(c.reports, r)
				c.mu.Unlock()
			}
		}),
		driver.WithMisuseFunc(func(m leak.Misuse) {
			c.mu.Lock()
			c.misuse[m.Kind]++
			c.mu.Unlock()
		}),
	}
	var (
		db  *sql.DB
		ids *idConnector
	)
	if b.name == "mysql" {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		mc, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ids = &idConnector{Connector: mc, ids: map[int64]bool{}}
		wc, err := driver.NewConnector(ids, opts...)
		if err != nil {
			t.Fatal(err)
		}
		db = sql.OpenDB(wc)
	} else {
		name := fmt.Sprintf("sqlwatch-stress-%s-%d", b.name, registered.Add(1))
		if err := driver.RegisterByName(name, b.inner, opts...); err != nil {
			t.Fatal(err)
		}
		var err error
		if db, err = sql.Open(name, dsn); err != nil {
			t.Fatal(err)
		}
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	db.SetMaxOpenConns(stressMaxConns)
	db.SetMaxIdleConns(stressMaxConns)
	tr := driver.TrackerOf(db)
	reg := prometheus.NewRegistry()
	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}

	// One row per worker.
	ctx := context.Background()
	tbl := "sqlwatch_stress_" + b.name
	db.ExecContext(ctx, "DROP TABLE IF EXISTS "+tbl)
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+tbl+" (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	var values []string
	for i := 1; i <= stressWorkers; i++ {
		values = append(values, fmt.Sprintf("(%d, 0)", i))
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+tbl+" (id, n) VALUES "+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !closed {
			db.ExecContext(context.Background(), "DROP TABLE "+tbl)
		}
	}()

	p1 := ph(b, 1)
	q := stressQueries{
		update:    fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = %s", tbl, p1),
		selectOne: fmt.Sprintf("SELECT n FROM %s WHERE id = %s", tbl, p1),
		scan:      fmt.Sprintf("SELECT id, n FROM %s WHERE id > %s ORDER BY id", tbl, p1),
	}
	switch {
	case b.name == "mysql":
		// Rows that the server sends one by one, slowly: a kill lands
		// in the middle of them.
		q.slowRows = fmt.Sprintf("SELECT id, SLEEP(0.002) FROM %s WHERE id <= %s", tbl, p1)
		q.slow = "SELECT SLEEP(0.02)"
	case pg:
		q.slowRows = fmt.Sprintf("SELECT x, pg_sleep(0.002) FROM generate_series(1, %s::int) AS x", p1)
		q.slow = "SELECT pg_sleep(0.02)"
	default:
		q.slowRows = fmt.Sprintf("SELECT id, n FROM %s WHERE id <= %s", tbl, p1)
		q.slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT max(x) FROM c"
	}
	shared, err := db.PrepareContext(ctx, q.selectOne)
	if err != nil {
		t.Fatal(err)
	}
	sharedClosed := false
	defer func() {
		if !sharedClosed {
			shared.Close()
		}
	}()

	// The fault injector.
	faultCtx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	var faults sync.WaitGroup
	var admin *sql.DB
	if server {
		var err error
		admin, err = sql.Open(b.inner, adminDSN) // plain driver: not part of the pool under test
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		admin.SetMaxOpenConns(1)
		faults.Add(1)
		go func() {
			defer faults.Done()
			injectFaults(faultCtx, t, b, admin, adminDSN, appName, ids, c, dur, restart)
		}()
	}

	// The load.
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for w := range stressWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			id := w + 1
			for time.Now().Before(end) {
				op := rng.IntN(len(stressOps))
				c.ops[op].Add(1)
				err := stressOp(db, shared, q, op, id, rng)
				if err != nil {
					c.err(err)
					// Back off a little, as an application would, so that
					// a server being restarted is not hammered.
					time.Sleep(time.Duration(1+rng.IntN(5)) * time.Millisecond)
				}
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	select {
	case <-workersDone:
	case <-time.After(dur + 2*time.Minute):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("the workers did not finish within 2 minutes of the end of the load:\n%s", buf[:n])
	}
	loadEnd := time.Now()
	stopFaults()
	faults.Wait()
	loadTime := loadEnd.Sub(start)

	// The pool recovers.
	recovered := time.Duration(-1)
	for rs := time.Now(); time.Since(rs) < stressRecovery+5*time.Second; time.Sleep(50 * time.Millisecond) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var one int
		err := db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
		cancel()
		if err == nil && one == 1 {
			recovered = time.Since(rs)
			break
		}
	}
	if recovered < 0 || recovered > stressRecovery {
		t.Errorf("stress %s: the pool did not answer a plain query within %v after the faults stopped (took %v)", b.name, stressRecovery, recovered)
	}
	shared.Close()
	sharedClosed = true

	// Nothing is left open: tracked resources and the gauges.
	openCounts := func() map[string]int64 {
		m := map[string]int64{}
		for _, k := range track.Kinds {
			m[k.String()] = int64(tr.OpenCount(k))
		}
		return m
	}
	var left map[string]int64
	for ws := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		left = openCounts()
		total := int64(0)
		for _, n := range left {
			total += n
		}
		if total == 0 || time.Since(ws) > 5*time.Second {
			break
		}
	}
	// Statements too: the application closed every *sql.Stmt, and
	// database/sql closes a driver statement at once, when its conn
	// returns to the pool, or with its conn (which takes its statements
	// with it).
	for k, n := range left {
		if n != 0 {
			snap := tr.Snapshot()
			t.Errorf("stress %s: %d %s still tracked as open after the load; the first: %+v", b.name, n, k, snap[:min(3, len(snap))])
		}
	}
	gauges := fmt.Sprintf(`
# HELP sqlwatch_conn_checked_out Connections checked out of the pool now.
# TYPE sqlwatch_conn_checked_out gauge
sqlwatch_conn_checked_out{db_name="stress-%[1]s"} 0
# HELP sqlwatch_tx_open Transactions open now.
# TYPE sqlwatch_tx_open gauge
sqlwatch_tx_open{db_name="stress-%[1]s"} 0
`, b.name)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(gauges), "sqlwatch_tx_open", "sqlwatch_conn_checked_out"); err != nil {
		t.Errorf("stress %s: gauges after the load: %v", b.name, err)
	}

	// No leak report, then or once the threshold has passed since the
	// end of the load (a conn the pool discarded must not be reported).
	c.mu.Lock()
	reportsAtEnd := len(c.reports)
	c.mu.Unlock()
	time.Sleep(time.Until(loadEnd.Add(stressThreshold + 2*time.Second)))
	c.mu.Lock()
	reportsLater := len(c.reports)
	for _, r := range c.reports {
		t.Errorf("stress %s: leak report: %s open %v at %s, last query %q", b.name, r.Kind, r.Age, r.Origin, r.LastQuery)
	}
	c.mu.Unlock()

	st := tr.Stats()
	c.mu.Lock()
	kills := int64(0)
	for _, n := range c.kills {
		kills += n
	}
	killedLogged := c.misuse[leak.MisuseConnKilled]
	for _, k := range []string{leak.MisuseTxBypass, leak.MisuseConcurrent, leak.MisuseOpenRows} {
		if c.misuse[k] > 0 {
			t.Errorf("stress %s: %d false %s reports (the workers use the pool correctly)", b.name, c.misuse[k], k)
		}
	}
	if kills > 0 && killedLogged == 0 {
		t.Errorf("stress %s: %d sessions killed, no %s report", b.name, kills, leak.MisuseConnKilled)
	}
	c.mu.Unlock()

	// DB.Close leaves no goroutine behind, and the heap comes back.
	if _, err := db.ExecContext(ctx, "DROP TABLE "+tbl); err != nil {
		t.Errorf("drop: %v", err)
	}
	db.Close()
	closed = true
	if admin != nil {
		admin.Close()
	}
	// DB.Close closes every conn, and a closed conn takes its statements
	// with it: nothing may stay tracked.
	for _, k := range track.Kinds {
		if n := tr.OpenCount(k); n != 0 {
			snap := tr.Snapshot()
			t.Errorf("stress %s: %d %s still tracked as open after DB.Close; the first: %+v", b.name, n, k, snap[:min(1, len(snap))])
		}
	}
	goroutinesEnd := runtime.NumGoroutine()
	goleak.VerifyNone(t, ignore) // retries for a while: drivers' goroutines end just after Close
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapEnd := ms.HeapInuse
	if heapEnd > 2*heapStart && heapEnd > heapStart+20<<20 {
		t.Errorf("stress %s: heap in use %d MB after the run, %d MB before: more than 2x and +20 MB", b.name, heapEnd>>20, heapStart>>20)
	}

	// The figures.
	var ops []string
	total := int64(0)
	for i, name := range stressOps {
		n := c.ops[i].Load()
		total += n
		ops = append(ops, fmt.Sprintf("%s %d", name, n))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Logf("stress %s: %d goroutines for %v on a pool of %d conns: %d operations (%.0f/s): %s",
		b.name, stressWorkers, loadTime.Round(time.Millisecond), stressMaxConns, total, float64(total)/loadTime.Seconds(), strings.Join(ops, ", "))
	errTotal := int64(0)
	for _, n := range c.errs {
		errTotal += n
	}
	t.Logf("stress %s: errors seen by the application: %d (%d with the driver's own error type), by class: %s",
		b.name, errTotal, c.typed.Load(), formatCounts(c.errs))
	for _, cl := range slices.Sorted(maps.Keys(c.examples)) {
		t.Logf("stress %s:   e.g. %s: %s", b.name, cl, c.examples[cl])
	}
	if server {
		var rs []string
		for _, d := range c.restarts {
			rs = append(rs, d.Round(100*time.Millisecond).String())
		}
		t.Logf("stress %s: faults: %d sessions killed (by server state: %s), %d server restarts (down and back in %s)",
			b.name, kills, formatCounts(c.kills), len(c.restarts), strings.Join(rs, ", "))
	}
	t.Logf("stress %s: after the faults a plain query answered in %v; conn deaths seen by sqlwatch: %s; misuse found: %s; misuse reports logged: %s (%s: %d)",
		b.name, recovered.Round(time.Millisecond), formatCounts(st.ConnDeaths), formatCounts(nonzero(st.Misuse)), formatCounts(c.misuse), leak.MisuseConnKilled, killedLogged)
	t.Logf("stress %s: left open after the load: %s; leak reports: %d at the end of the load, %d after %v more; reports dropped %d, panics %d",
		b.name, formatCounts(left), reportsAtEnd, reportsLater, stressThreshold+2*time.Second, st.Dropped, st.Panics)
	t.Logf("stress %s: goroutines %d before the pool, %d after DB.Close; heap in use %.1f MB before, %.1f MB after",
		b.name, goroutinesStart, goroutinesEnd, float64(heapStart)/(1<<20), float64(heapEnd)/(1<<20))
}

func nonzero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// stressQueries are the statements of the load, in the backend's dialect.
type stressQueries struct {
	update    string // one worker's own row
	selectOne string // one row
	scan      string // many rows, read partly
	slowRows  string // rows the server sends slowly (MariaDB, PostgreSQL)
	slow      string // a statement that takes about 20ms
}

// stressOp runs one operation and returns the first error the
// application saw (the errors of cleanup calls that are expected, such
// as sql.ErrTxDone after a cancellation, are not counted).
func stressOp(db *sql.DB, shared *sql.Stmt, q stressQueries, op, id int, rng *rand.Rand) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound, never reached when healthy
	defer cancel()
	var n int64
	switch stressOps[op] {
	case "exec":
		_, err := db.ExecContext(ctx, q.update, id)
		return err

	case "query_early_close":
		rows, err := db.QueryContext(ctx, q.scan, rng.IntN(stressWorkers-10))
		if err != nil {
			return err
		}
		var a, v int64
		if rows.Next() {
			err = rows.Scan(&a, &v)
		}
		rows.Close()
		return err

	case "query_late_close":
		rows, err := db.QueryContext(ctx, q.slowRows, 5+rng.IntN(10))
		if err != nil {
			return err
		}
		i := 0
		for rows.Next() {
			var a, v any
			if err := rows.Scan(&a, &v); err != nil {
				rows.Close()
				return err
			}
			if i++; i%4 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		err = rows.Err()
		rows.Close()
		return err

	case "tx_commit", "tx_rollback":
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q.update, id); err != nil {
			tx.Rollback()
			return err
		}
		time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond) // idle in the tx: a kill may land here
		if err := tx.QueryRowContext(ctx, q.selectOne, id).Scan(&n); err != nil {
			tx.Rollback()
			return err
		}
		if stressOps[op] == "tx_commit" {
			return tx.Commit()
		}
		rows, err := tx.QueryContext(ctx, q.scan, id)
		if err != nil {
			tx.Rollback()
			return err
		}
		rows.Next()
		rows.Close()
		return tx.Rollback()

	case "conn":
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, q.update, id); err != nil {
			return err
		}
		return conn.QueryRowContext(ctx, q.selectOne, id).Scan(&n)

	case "prepared":
		st, err := db.PrepareContext(ctx, q.selectOne)
		if err != nil {
			return err
		}
		defer st.Close()
		for range 2 {
			if err := st.QueryRowContext(ctx, id).Scan(&n); err != nil {
				return err
			}
		}
		return nil

	case "shared_stmt":
		return shared.QueryRowContext(ctx, id).Scan(&n)

	case "cancel_query":
		cctx, ccancel := context.WithCancel(ctx)
		t := time.AfterFunc(time.Duration(rng.IntN(20))*time.Millisecond, ccancel)
		defer t.Stop()
		defer ccancel()
		rows, err := db.QueryContext(cctx, q.slow)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
		return err

	case "cancel_rows":
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		rows, err := db.QueryContext(cctx, q.slowRows, 10)
		if err != nil {
			return err
		}
		for i := 0; rows.Next(); i++ {
			if i == 2 {
				ccancel() // mid-rows
			}
		}
		err = rows.Err()
		rows.Close()
		return err

	case "cancel_tx":
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		tx, err := db.BeginTx(cctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(cctx, q.update, id); err != nil {
			tx.Rollback()
			return err
		}
		if rng.IntN(2) == 0 {
			ccancel() // between statements: database/sql rolls back
		} else {
			t := time.AfterFunc(time.Duration(rng.IntN(10))*time.Millisecond, ccancel) // during one
			defer t.Stop()
		}
		_, err = tx.ExecContext(cctx, q.slow)
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) && err == nil {
			err = rerr
		}
		return err

	case "timeout":
		tctx, tcancel := context.WithTimeout(ctx, time.Duration(1+rng.IntN(10))*time.Millisecond)
		defer tcancel()
		_, err := db.ExecContext(tctx, q.slow)
		return err
	}
	panic("unknown op")
}

// injectFaults kills sessions of the pool under test every
// stressKillEvery — preferring, in turn, one inside a transaction, one
// running a query (mid-rows) and any — and, when restart is set,
// restarts the server once, at 40% of the load.
func injectFaults(ctx context.Context, t *testing.T, b backend, admin *sql.DB, dsn, appName string, ids *idConnector, c *stressCounts, dur time.Duration, restart bool) {
	type session struct {
		id    int64
		state string // in_tx, query, idle
	}
	list := func() ([]session, error) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var rows *sql.Rows
		var err error
		if b.name == "mysql" {
			cfg, _ := mysql.ParseDSN(dsn)
			rows, err = admin.QueryContext(qctx, `SELECT p.ID, p.COMMAND, t.trx_id IS NOT NULL
				FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
				WHERE p.USER = ? AND p.DB = ? AND p.ID <> CONNECTION_ID()`, cfg.User, cfg.DBName)
		} else {
			rows, err = admin.QueryContext(qctx, `SELECT pid, COALESCE(state, ''), xact_start IS NOT NULL
				FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`, appName)
		}
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []session
		for rows.Next() {
			var s session
			var state string
			var inTx bool
			if err := rows.Scan(&s.id, &state, &inTx); err != nil {
				return nil, err
			}
			if ids != nil && !ids.has(s.id) {
				continue // another test's session
			}
			switch {
			case state == "Query" || state == "active" || state == "Execute":
				s.state = "query" // running a statement, or sending rows
			case inTx:
				s.state = "in_tx" // idle inside a transaction
			default:
				s.state = "idle"
			}
			out = append(out, s)
		}
		return out, rows.Err()
	}
	kill := func(s session) error {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var err error
		if b.name == "mysql" {
			_, err = admin.ExecContext(qctx, fmt.Sprintf("KILL %d", s.id))
		} else {
			_, err = admin.ExecContext(qctx, "SELECT pg_terminate_backend($1)", s.id)
		}
		return err
	}

	restartAt := time.Now().Add(dur * 4 / 10)
	tick := time.NewTicker(stressKillEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if restart && !restartAt.IsZero() && time.Now().After(restartAt) {
			restartAt = time.Time{}
			d, err := restartServer(b, dsn)
			if err != nil {
				t.Errorf("stress %s: restart: %v", b.name, err)
				continue
			}
			c.mu.Lock()
			c.restarts = append(c.restarts, d)
			c.mu.Unlock()
			continue
		}
		sessions, err := list()
		if err != nil || len(sessions) == 0 {
			continue
		}
		want := []string{"in_tx", "query", ""}[n%3]
		victim := sessions[rand.IntN(len(sessions))]
		for _, s := range sessions {
			if s.state == want {
				victim = s
				break
			}
		}
		if kill(victim) == nil {
			c.mu.Lock()
			c.kills[victim.state]++
			c.mu.Unlock()
		}
	}
}

// restartServer restarts the database server of the DSN (it must run on
// this machine) and returns how long it was unavailable.
func restartServer(b backend, dsn string) (time.Duration, error) {
	start := time.Now()
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if b.name == "mysql" {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return 0, err
		}
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return 0, err
		}
		args := []string{"-u" + cfg.User, "-h" + host, "-P" + port}
		if cfg.Passwd != "" {
			args = append(args, "-p"+cfg.Passwd)
		}
		if err := run("mariadb-admin", append(args, "shutdown")...); err != nil {
			return 0, err
		}
		// mariadb-admin returns before the server has exited, and
		// start-stop-daemon --oknodo does nothing while it still runs.
		for exec.Command("start-stop-daemon", "--status", "--exec", "/usr/sbin/mariadbd").Run() == nil {
			if time.Since(start) > time.Minute {
				return 0, fmt.Errorf("MariaDB still running a minute after its shutdown")
			}
			time.Sleep(50 * time.Millisecond)
		}
		os.MkdirAll("/run/mysqld", 0o755)
		exec.Command("chown", "mysql:mysql", "/run/mysqld").Run()
		if err := run("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"); err != nil {
			return 0, err
		}
		for time.Since(start) < time.Minute {
			if exec.Command("mariadb-admin", append(args, "ping")...).Run() == nil {
				return time.Since(start), nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return 0, fmt.Errorf("MariaDB did not answer within a minute of its restart")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		return 0, fmt.Errorf("no PostgreSQL cluster in /etc/postgresql: %v", err)
	}
	if err := run("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", "restart"); err != nil {
		return 0, err
	}
	u, _ := url.Parse(dsn)
	for time.Since(start) < time.Minute {
		if exec.Command("pg_isready", "-q", "-h", u.Hostname(), "-p", cmp.Or(u.Port(), "5432")).Run() == nil {
			return time.Since(start), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("PostgreSQL did not answer within a minute of its restart")
}
