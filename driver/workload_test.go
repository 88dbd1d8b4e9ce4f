package driver_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/errclass"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// The correct workload's settings. Every margin is generous: the test
// runs under -race on a small machine shared with other work.
const (
	wlWorkers      = 32                      // goroutines of application code
	wlMaxOpen      = 8                       // the main pool: small, so that waits happen
	wlThreshold    = 2 * time.Second         // leak threshold: ~7x the longest legitimate hold
	wlWaitLimit    = 2 * time.Second         // the main pool's WaitLimit: its waits stay well below it
	wlBurstLimit   = time.Second             // the burst pool's: above the burst's waits (~300 ms), below its idle period
	wlBurstIdle    = 1600 * time.Millisecond // the burst pool's idle period before each burst (≥ 1.5 s)
	wlBurstHold    = 300 * time.Millisecond  // how long each of the burst's two txs holds its conn
	wlDefaultRun   = 4 * time.Second         // SQLWATCH_WORKLOAD's default
	wlWorkloadEnv  = "SQLWATCH_WORKLOAD"
	wlMonitorEvery = 100 * time.Millisecond
)

// envDuration reads a duration from the environment variable name, or
// returns def when it is not set.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 5s", name, v)
	}
	return d
}

// observed collects everything sqlwatch says about the pools of one test:
// leak and release reports, misuse reports, pool alerts (and recoveries)
// and every slog record, as JSON lines.
type observed struct {
	mu      sync.Mutex
	reports []leak.Report
	misuse  []leak.Misuse
	alerts  []leak.PoolAlert
	logs    []string
}

func (w *observed) onReport(r leak.Report) {
	w.mu.Lock()
	w.reports = append(w.reports, r)
	w.mu.Unlock()
}

func (w *observed) onMisuse(m leak.Misuse) {
	w.mu.Lock()
	w.misuse = append(w.misuse, m)
	w.mu.Unlock()
}

func (w *observed) onAlert(a leak.PoolAlert) {
	w.mu.Lock()
	w.alerts = append(w.alerts, a)
	w.mu.Unlock()
}

// Write receives one JSON record per call from the slog handler.
func (w *observed) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.logs = append(w.logs, strings.TrimSpace(string(p)))
	w.mu.Unlock()
	return len(p), nil
}

func (w *observed) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// snapshot returns copies of what was collected so far.
func (w *observed) snapshot() (reports []leak.Report, misuse []leak.Misuse, alerts []leak.PoolAlert, logs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]leak.Report(nil), w.reports...), append([]leak.Misuse(nil), w.misuse...),
		append([]leak.PoolAlert(nil), w.alerts...), append([]string(nil), w.logs...)
}

// options are the driver options that send everything to w.
func (w *observed) options(threshold time.Duration) []driver.Option {
	return []driver.Option{
		driver.WithThreshold(leak.KindTx, threshold),
		driver.WithThreshold(leak.KindConn, threshold),
		driver.WithThreshold(leak.KindRows, threshold),
		driver.WithInterval(50 * time.Millisecond),
		driver.WithReportLimit(1_000_000, 100_000), // nothing suppressed: every report counts
		driver.WithLogger(w.logger()),
		driver.WithReportFunc(w.onReport),
		driver.WithMisuseFunc(w.onMisuse),
	}
}

// monitor starts a pool-wait monitor on db whose alerts go to w.
func (w *observed) monitor(t *testing.T, db *sql.DB, interval, waitLimit time.Duration) *leak.Monitor {
	t.Helper()
	m, err := leak.NewMonitor(db, leak.MonitorConfig{
		Interval:  interval,
		WaitLimit: waitLimit,
		AlertGap:  time.Millisecond, // every episode is alerted
		Logger:    w.logger(),
		OnAlert:   w.onAlert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// openWatched registers a fresh wrapped driver for b with opts and opens
// a pool on dsn, closed when the test ends.
func openWatched(t *testing.T, b backend, dsn, label string, opts []driver.Option) *sql.DB {
	t.Helper()
	name := fmt.Sprintf("sqlwatch-%s-%s-%d", label, b.name, registered.Add(1))
	opts = append([]driver.Option{driver.WithDBName(label + "-" + b.name)}, opts...)
	if err := driver.RegisterByName(name, b.inner, opts...); err != nil {
		t.Fatal(err)
	}
	return openAndPing(t, b, name, dsn)
}

// workloadDSN is b's DSN for a pool of its own; SQLite gets a file of its
// own in WAL mode (readers never block the writer).
func workloadDSN(t *testing.T, b backend) string {
	dsn := b.dsn(t)
	if b.name == "sqlite" {
		dsn += "&_pragma=journal_mode(WAL)"
	}
	return dsn
}

// wlQueries are the statements of the workloads, in b's dialect.
type wlQueries struct {
	table      string
	update     string // UPDATE one row ($1: id)
	selectOne  string // SELECT n of one row ($1: id)
	scan       string // SELECT id, n of every row, in order
	slowCancel string // a statement that runs until it is cancelled, or a fraction of a second: far below the threshold
}

// wlTable creates a table with rows 1..n (n INTEGER, 0) named after the
// test's purpose and b, dropped at the end.
func wlTable(t *testing.T, db *sql.DB, b backend, purpose string, rows int) wlQueries {
	t.Helper()
	tbl := fmt.Sprintf("sqlwatch_%s_%s", purpose, b.name)
	ctx := context.Background()
	db.ExecContext(ctx, "DROP TABLE IF EXISTS "+tbl)
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+tbl+" (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	values := make([]string, rows)
	for i := range values {
		values[i] = fmt.Sprintf("(%d, 0)", i+1)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+tbl+" (id, n) VALUES "+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.ExecContext(context.Background(), "DROP TABLE "+tbl) })
	p1 := ph(b, 1)
	q := wlQueries{
		table:     tbl,
		update:    fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = %s", tbl, p1),
		selectOne: fmt.Sprintf("SELECT n FROM %s WHERE id = %s", tbl, p1),
		scan:      fmt.Sprintf("SELECT id, n FROM %s ORDER BY id", tbl),
	}
	switch b.name {
	case "mysql":
		q.slowCancel = "SELECT SLEEP(0.2)"
	case "postgres", "pgx":
		q.slowCancel = "SELECT pg_sleep(0.2)"
	default:
		q.slowCancel = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT max(x) FROM c"
	}
	return q
}

// wlCounts is what the workload did, for its figures and its sanity
// checks.
type wlCounts struct {
	mu         sync.Mutex
	ops        map[string]int64
	expected   map[string]int64  // errors the workload provokes (cancellations), by class
	examples   map[string]string // one message per provoked class
	unexpected []string          // any other error, with its operation
}

func (c *wlCounts) op(name string) {
	c.mu.Lock()
	c.ops[name]++
	c.mu.Unlock()
}

// err records err from operation op: nil is nothing; a cancellation or
// deadline is expected when cancelled is true; anything else is a
// failure of the workload itself.
func (c *wlCounts) err(op string, err error, cancelled bool) {
	if err == nil {
		return
	}
	cl := errclass.Classify(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	// After a cancellation pgx closes the conn: the application's own
	// Rollback may then meet "conn closed" (bad_conn) before database/sql's
	// rollback has ended the tx. Raw pgx does the same.
	if cancelled && (cl == errclass.ClassCanceled || cl == errclass.ClassTimeout || cl == errclass.ClassBadConn ||
		errors.Is(err, sql.ErrTxDone) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		c.expected[cl.String()]++
		if _, ok := c.examples[cl.String()]; !ok {
			c.examples[cl.String()] = op + ": " + err.Error()
		}
		return
	}
	if len(c.unexpected) < 50 {
		c.unexpected = append(c.unexpected, fmt.Sprintf("%s: %v (class %s)", op, err, cl))
	}
}

// TestCorrectWorkload runs 32 goroutines of correct code on every backend
// for SQLWATCH_WORKLOAD (default 4s) and fails on any leak report,
// release line, misuse report, conn death, pool alert or log line: on
// correct code sqlwatch must say nothing. The code hands transactions from
// the goroutine that began them to workers that use them (one at a time)
// and back, reads rows on another goroutine than the one that queried
// them, cancels statements and transactions, saturates a small pool with
// short work (waits happen, well below the monitor's WaitLimit), serves
// keep-alive HTTP requests (one server goroutine serves many requests,
// each a transaction), takes, uses and closes *sql.Conn, pings, and, on a
// second pool of two conns, bursts after an idle period of 1.6 s (two
// 300 ms transactions fill the pool and four quick queries wait for
// them). Thresholds (2 s) and WaitLimits (2 s; the burst pool's 1 s)
// are low enough for a real
// leak or stall to be reported within the run; the gate (VerifyNone)
// catches what is left open at the end.
//
//	SQLWATCH_WORKLOAD=60s go test -race -count=1 -run TestCorrectWorkload -v ./driver
func TestCorrectWorkload(t *testing.T) {
	dur := envDuration(t, wlWorkloadEnv, wlDefaultRun)
	eachBackend(t, func(t *testing.T, b backend) { correctWorkload(t, b, dur) })
}

func correctWorkload(t *testing.T, b backend, dur time.Duration) {
	w := &observed{}
	db := openWatched(t, b, workloadDSN(t, b), "workload", w.options(wlThreshold))
	// SQLite has one writer: three conns keep its writers queued in the
	// pool (FIFO) rather than in its busy handler, whose sleeps grow to
	// 100 ms, which is how an application uses it.
	maxOpen := wlMaxOpen
	if b.name == "sqlite" {
		maxOpen = 3
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	burstDB := openWatched(t, b, workloadDSN(t, b), "burst", w.options(wlThreshold))
	burstDB.SetMaxOpenConns(2)
	burstDB.SetMaxIdleConns(2)
	q := wlTable(t, db, b, "workload", wlWorkers+1)
	bq := wlTable(t, burstDB, b, "burst", 4)
	// The main pool's monitor polls at the default interval; the burst
	// pool's ten times as often, so that a false stall in a burst of
	// 300 ms cannot slip between two polls.
	w.monitor(t, db, track.DefaultMonitorInterval, wlWaitLimit)
	w.monitor(t, burstDB, wlMonitorEvery, wlBurstLimit)
	// The monitors must see the pools before the load: a first poll
	// only records the starting figures.
	time.Sleep(track.DefaultMonitorInterval + wlMonitorEvery)

	c := &wlCounts{ops: map[string]int64{}, expected: map[string]int64{}, examples: map[string]string{}}
	ctx := context.Background()
	shared, err := db.PrepareContext(ctx, q.selectOne)
	if err != nil {
		t.Fatal(err)
	}

	// The keep-alive HTTP server: each request is one transaction.
	var newConns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.URL.Query().Get("id"))
		if err := wlHandle(r.Context(), db, q, id); err != nil {
			c.err("http handler", err, false)
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(rw, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	start := time.Now()
	end := start.Add(dur)
	running := func() bool { return time.Now().Before(end) }
	var wg sync.WaitGroup
	goroutines := 0
	spawn := func(f func(rng *rand.Rand)) {
		goroutines++
		n := uint64(goroutines)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(rand.New(rand.NewPCG(n, uint64(start.UnixNano()))))
		}()
	}
	id := 0
	nextID := func() int { id++; return id }

	// 4 pairs: a tx begun on one goroutine, used by a worker, handed back
	// and ended by its beginner (commit, rollback, or its context
	// cancelled); the beginner never touches the pool meanwhile.
	for range 4 {
		rowID := nextID()
		work := make(chan *sql.Tx)
		done := make(chan error)
		spawn(func(rng *rand.Rand) { // the worker
			for tx := range work {
				done <- wlUseTx(ctx, tx, q, rowID)
			}
		})
		spawn(func(rng *rand.Rand) { // the beginner
			defer close(work)
			for running() {
				c.op("tx handed to a worker")
				switch rng.IntN(3) {
				case 0, 1:
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						c.err("begin", err, false)
						continue
					}
					work <- tx
					if err := <-done; err != nil {
						c.err("worker", err, false)
						tx.Rollback()
						continue
					}
					if rng.IntN(2) == 0 {
						c.err("commit", tx.Commit(), false)
					} else {
						c.err("rollback", tx.Rollback(), false)
					}
				case 2:
					// The tx's context ends: database/sql rolls it back on
					// its own goroutine.
					tctx, cancel := context.WithCancel(ctx)
					tx, err := db.BeginTx(tctx, nil)
					if err != nil {
						cancel()
						c.err("begin", err, false)
						continue
					}
					work <- tx
					c.err("worker", <-done, false)
					cancel()
					c.op("tx cancelled after use")
				}
				think(rng)
			}
		})
	}

	// 2 pairs: rows queried on one goroutine, read to the end and closed
	// on another.
	for range 2 {
		handed := make(chan *sql.Rows)
		read := make(chan error)
		spawn(func(rng *rand.Rand) { // the reader
			for rows := range handed {
				n := 0
				for rows.Next() {
					var id, v int
					if err := rows.Scan(&id, &v); err != nil {
						rows.Close()
						read <- err
						continue
					}
					n++
				}
				err := rows.Err()
				if cerr := rows.Close(); err == nil {
					err = cerr
				}
				read <- err
			}
		})
		spawn(func(rng *rand.Rand) { // the querier
			defer close(handed)
			for running() {
				c.op("rows read on another goroutine")
				rows, err := db.QueryContext(ctx, q.scan)
				if err != nil {
					c.err("query", err, false)
					continue
				}
				handed <- rows
				c.err("read rows", <-read, false)
				think(rng)
			}
		})
	}

	// 2 goroutines cancel statements (a cancel during a slow statement,
	// a deadline, rows cancelled mid-read); 2 cancel transactions during
	// a statement.
	for range 2 {
		spawn(func(rng *rand.Rand) {
			for running() {
				switch rng.IntN(3) {
				case 0:
					c.op("statement cancelled")
					sctx, cancel := context.WithCancel(ctx)
					time.AfterFunc(time.Duration(1+rng.IntN(15))*time.Millisecond, cancel)
					_, err := db.ExecContext(sctx, q.slowCancel)
					c.err("cancelled exec", err, true)
					cancel()
				case 1:
					c.op("statement timed out")
					sctx, cancel := context.WithTimeout(ctx, time.Duration(1+rng.IntN(10))*time.Millisecond)
					var one any
					c.err("timed-out query", db.QueryRowContext(sctx, q.slowCancel).Scan(&one), true)
					cancel()
				case 2:
					c.op("rows cancelled mid-read")
					sctx, cancel := context.WithCancel(ctx)
					rows, err := db.QueryContext(sctx, q.scan)
					if err != nil {
						c.err("query", err, true)
						cancel()
						continue
					}
					rows.Next()
					cancel() // database/sql closes the rows
					for rows.Next() {
					}
					c.err("cancelled rows", rows.Err(), true)
					rows.Close()
				}
				thinkAfterCancel(rng)
			}
		})
	}
	for range 2 {
		rowID := nextID()
		spawn(func(rng *rand.Rand) {
			for running() {
				c.op("tx cancelled during a statement")
				tctx, cancel := context.WithCancel(ctx)
				tx, err := db.BeginTx(tctx, nil)
				if err != nil {
					cancel()
					c.err("begin", err, false)
					continue
				}
				if _, err := tx.ExecContext(tctx, q.update, rowID); err != nil {
					c.err("update in tx", err, false)
				}
				time.AfterFunc(time.Duration(1+rng.IntN(15))*time.Millisecond, cancel)
				_, err = tx.ExecContext(tctx, q.slowCancel)
				c.err("cancelled statement in tx", err, true)
				cancel()
				c.err("rollback after cancel", tx.Rollback(), true)
				thinkAfterCancel(rng)
			}
		})
	}

	// 11 goroutines saturate the pool with short work: statements,
	// prepared statements (a shared *sql.Stmt and one of its own),
	// short transactions, *sql.Conn taken, used and closed, pings.
	for range 11 {
		rowID := nextID()
		spawn(func(rng *rand.Rand) {
			for running() {
				wlShortWork(ctx, c, db, shared, q, rowID, rng)
			}
		})
	}

	// 4 keep-alive HTTP clients, each its own connection: the server
	// goroutine of each serves all its requests.
	for range 4 {
		rowID := nextID()
		spawn(func(rng *rand.Rand) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for running() {
				c.op("keep-alive HTTP request")
				resp, err := client.Get(fmt.Sprintf("%s/?id=%d", srv.URL, rowID))
				if err != nil {
					c.err("http get", err, false)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					c.err("http status", fmt.Errorf("%s: %s", resp.Status, body), false)
				}
				think(rng)
			}
		})
	}

	// The burst pool: idle, then two long txs fill it and four quick
	// queries wait for them; over again while the run lasts (at least
	// once).
	var burstWaits struct {
		sync.Mutex
		max time.Duration
		n   int
	}
	spawn(func(rng *rand.Rand) {
		for first := true; first || time.Until(end) > wlBurstIdle+wlBurstHold; first = false {
			time.Sleep(wlBurstIdle)
			c.op("burst after idle")
			var bw sync.WaitGroup
			for i := range 2 {
				bw.Add(1)
				go func() {
					defer bw.Done()
					tx, err := burstDB.BeginTx(ctx, nil)
					if err != nil {
						c.err("burst begin", err, false)
						return
					}
					if _, err := tx.ExecContext(ctx, bq.update, i+1); err != nil {
						c.err("burst update", err, false)
					}
					time.Sleep(wlBurstHold)
					c.err("burst commit", tx.Commit(), false)
				}()
			}
			time.Sleep(20 * time.Millisecond) // the txs take the conns first
			for i := range 4 {
				bw.Add(1)
				go func() {
					defer bw.Done()
					t0 := time.Now()
					var n int
					c.err("burst query", burstDB.QueryRowContext(ctx, bq.selectOne, 3+i%2).Scan(&n), false)
					d := time.Since(t0)
					burstWaits.Lock()
					burstWaits.max, burstWaits.n = max(burstWaits.max, d), burstWaits.n+1
					burstWaits.Unlock()
				}()
			}
			bw.Wait()
		}
	})
	if goroutines != wlWorkers { // the HTTP server's and the burst's own goroutines come on top
		t.Fatalf("the workload has %d goroutines; want %d", goroutines, wlWorkers)
	}

	// The main pool's mean wait per monitor interval, as the monitor
	// computes it, for the figures.
	var maxMeanWait, maxMonitorMean time.Duration
	// It samples until the workers are done and two intervals more, as
	// the monitor does (at its interval, not in phase with it).
	sampleDone := make(chan struct{})
	workersDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		prev := db.Stats()
		for after := 0; after < 2; {
			select {
			case <-workersDone:
				after++
			default:
			}
			time.Sleep(track.DefaultMonitorInterval)
			s := db.Stats()
			dc, dd := s.WaitCount-prev.WaitCount, s.WaitDuration-prev.WaitDuration
			if dc > 0 {
				maxMeanWait = max(maxMeanWait, dd/time.Duration(dc))
			}
			if dd > 0 { // the monitor's formula: it divides by max(dc, 1), so an interval in which waits end and none begins gives their sum
				maxMonitorMean = max(maxMonitorMean, dd/time.Duration(max(dc, 1)))
			}
			prev = s
		}
	}()

	wg.Wait()
	close(workersDone)
	<-sampleDone
	elapsed := time.Since(start)
	shared.Close()

	// Nothing left open: the gate, on both pools.
	leak.VerifyNone(t, leak.Pool(db), leak.Pool(burstDB), leak.RetryFor(3*time.Second))
	// Time for the watchdogs and the monitors to pass once more.
	time.Sleep(300 * time.Millisecond)

	st, bst := db.Stats(), burstDB.Stats()
	c.mu.Lock()
	t.Logf("%s: %d goroutines for %v; ops %v; provoked errors %v %q; main pool waits %d (%v in all, worst interval mean %v, by the monitor's formula %v, limit %v); "+
		"HTTP connections %d; burst pool waits %d, %d burst queries, slowest %v",
		b.name, wlWorkers, elapsed.Round(time.Millisecond), c.ops, c.expected, c.examples, st.WaitCount, st.WaitDuration.Round(time.Millisecond),
		maxMeanWait.Round(time.Millisecond), maxMonitorMean.Round(time.Millisecond), wlWaitLimit, newConns.Load(), bst.WaitCount, burstWaits.n, burstWaits.max.Round(time.Millisecond))
	for _, e := range c.unexpected {
		t.Errorf("the workload itself failed: %s", e)
	}
	c.mu.Unlock()

	// The workload did what it claims.
	if st.WaitCount == 0 {
		t.Errorf("the main pool never made a caller wait: no saturation")
	}
	if bst.WaitCount == 0 {
		t.Errorf("the burst pool never made a caller wait")
	}
	if n, reqs := newConns.Load(), c.ops["keep-alive HTTP request"]; n == 0 || reqs < 2*n {
		t.Errorf("HTTP: %d requests on %d connections: keep-alive did not serve several requests per connection", reqs, n)
	}
	for _, op := range []string{"tx handed to a worker", "tx cancelled after use", "rows read on another goroutine",
		"statement cancelled", "tx cancelled during a statement", "conn taken, used, closed", "ping", "keep-alive HTTP request", "burst after idle"} {
		if c.ops[op] == 0 {
			t.Errorf("the workload never ran %q", op)
		}
	}

	// sqlwatch said nothing.
	checkSilent(t, w, db, burstDB)
}

// checkSilent fails t on anything sqlwatch reported about the pools, and
// prints it in full.
func checkSilent(t *testing.T, w *observed, dbs ...*sql.DB) {
	t.Helper()
	reports, misuse, alerts, logs := w.snapshot()
	for _, r := range reports {
		what := "leak report"
		if r.Released {
			what = "release line"
		}
		t.Errorf("%s on correct code: %s", what, fullReport(r))
	}
	for _, m := range misuse {
		t.Errorf("misuse report on correct code: %s", fullMisuse(m))
	}
	for _, a := range alerts {
		what := "pool alert"
		if a.Recovered {
			what = "pool recovery"
		}
		t.Errorf("%s on correct code: %s", what, fullJSON(a))
	}
	for _, l := range logs {
		t.Errorf("log line on correct code: %s", l)
	}
	for _, db := range dbs {
		s := driver.TrackerOf(db).Stats()
		misuseTotal := int64(0)
		for _, n := range s.Misuse {
			misuseTotal += n
		}
		// A conn the driver closed after a cancellation (pgx does) and
		// database/sql then found dead in the pool counts as an idle
		// death; it is shown, not failed on: the misuse report that a
		// real death makes is.
		deaths := s.ConnDeaths[leak.DeathHeld] + s.ConnDeaths[leak.DeathInTx]
		if n := s.ConnDeaths[leak.DeathIdle]; n > 0 {
			t.Logf("NOTE %s: %d conns counted as died idle (sqlwatch_conn_deaths_total{state=\"idle\"}) on correct code with cancellations",
				driver.TrackerOf(db).DBName(), n)
		}
		if s.Reported != 0 || s.Released != 0 || s.PoolAlerts != 0 || s.Suppressed != 0 || s.Dropped != 0 || s.Panics != 0 ||
			misuseTotal != 0 || deaths != 0 {
			t.Errorf("%s: tracker stats on correct code: %s", driver.TrackerOf(db).DBName(), fullJSON(s))
		}
	}
}

func fullJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

func fullReport(r leak.Report) string {
	var stack []string
	for _, f := range r.Stack {
		stack = append(stack, f.Function+" "+f.Location())
	}
	return fmt.Sprintf("kind=%s released=%v db=%s origin=%s func=%s goroutine=%d age=%v held=%v statements=%d last_query=%q stack=%q",
		r.Kind, r.Released, r.DBName, r.Origin, r.Func, r.Goroutine, r.Age, r.Held, r.Statements, r.LastQuery, stack)
}

func fullMisuse(m leak.Misuse) string {
	site := func(s leak.Site) string {
		var stack []string
		for _, f := range s.Stack {
			stack = append(stack, f.Function+" "+f.Location())
		}
		return fmt.Sprintf("{origin=%s func=%s goroutine=%d query=%q stack=%q}", s.Origin, s.Func, s.Goroutine, s.Query, stack)
	}
	return fmt.Sprintf("kind=%s db=%s class=%s state=%s age=%v idle=%v here=%s there=%s holders=%s",
		m.Kind, m.DBName, m.Class, m.State, m.Age, m.Idle, site(m.Here), site(m.There), fullJSON(m.Holders))
}

// wlHandle is a request handler: one transaction, begun and committed.
func wlHandle(ctx context.Context, db *sql.DB, q wlQueries, id int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, q.update, id); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, q.selectOne, id).Scan(&n); err != nil {
		return err
	}
	return tx.Commit()
}

// wlUseTx is a worker's use of a tx handed to it: statements one after
// the other, rows read to the end and closed before the next.
func wlUseTx(ctx context.Context, tx *sql.Tx, q wlQueries, id int) error {
	if _, err := tx.ExecContext(ctx, q.update, id); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, q.scan)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		return err
	}
	var n int
	return tx.QueryRowContext(ctx, q.selectOne, id).Scan(&n)
}

// wlShortWork is one piece of short, correct work on db.
func wlShortWork(ctx context.Context, c *wlCounts, db *sql.DB, shared *sql.Stmt, q wlQueries, id int, rng *rand.Rand) {
	var n int
	switch rng.IntN(7) {
	case 0:
		c.op("query")
		c.err("query", db.QueryRowContext(ctx, q.selectOne, id).Scan(&n), false)
	case 1:
		c.op("exec")
		_, err := db.ExecContext(ctx, q.update, id)
		c.err("exec", err, false)
	case 2:
		c.op("shared stmt")
		c.err("shared stmt", shared.QueryRowContext(ctx, id).Scan(&n), false)
	case 3:
		c.op("prepared stmt")
		st, err := db.PrepareContext(ctx, q.update)
		if err != nil {
			c.err("prepare", err, false)
			return
		}
		_, err = st.ExecContext(ctx, id)
		c.err("prepared exec", err, false)
		c.err("stmt close", st.Close(), false)
	case 4:
		c.op("short tx")
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			c.err("begin", err, false)
			return
		}
		_, err = tx.ExecContext(ctx, q.update, id)
		c.err("update in tx", err, false)
		c.err("commit", tx.Commit(), false)
	case 5:
		c.op("conn taken, used, closed")
		conn, err := db.Conn(ctx)
		if err != nil {
			c.err("conn", err, false)
			return
		}
		_, err = conn.ExecContext(ctx, q.update, id)
		c.err("conn exec", err, false)
		c.err("conn query", conn.QueryRowContext(ctx, q.selectOne, id).Scan(&n), false)
		tx, err := conn.BeginTx(ctx, nil)
		if err == nil {
			_, err = tx.ExecContext(ctx, q.update, id)
			c.err("conn tx exec", err, false)
			c.err("conn tx commit", tx.Commit(), false)
		} else {
			c.err("conn begin", err, false)
		}
		c.err("conn close", conn.Close(), false)
	case 6:
		c.op("ping")
		c.err("ping", db.PingContext(ctx), false)
	}
	time.Sleep(time.Duration(2+rng.IntN(10)) * time.Millisecond)
}

// think is the pause of application code between two pieces of work:
// the workload keeps the pool busy, not beyond what this small, shared
// machine serves within the monitor's WaitLimit.
func think(rng *rand.Rand) {
	time.Sleep(time.Duration(10+rng.IntN(30)) * time.Millisecond)
}

// thinkAfterCancel is the longer pause after a cancellation: on
// PostgreSQL a cancellation costs a new server connection (the cancel
// request; pgx also closes the cancelled conn), about 300 ms on this
// machine, during which the statement holds its pool conn.
func thinkAfterCancel(rng *rand.Rand) {
	time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond)
}

// goroutineID is the calling goroutine's id, as reports give it (slow:
// for tests only).
func goroutineID() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := bytes.Fields(buf[:n])
	if len(f) < 2 {
		return 0
	}
	id, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return id
}
