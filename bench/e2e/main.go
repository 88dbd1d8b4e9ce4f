// Command e2e measures sqlwatch end to end against real databases on the
// loopback: PostgreSQL through lib/pq and pgx's stdlib, MariaDB (or MySQL)
// through go-sql-driver/mysql.
//
// For each database and driver it creates a small table, then runs two
// workloads with -clients concurrent clients:
//
//	select  a single-row SELECT by primary key
//	tx      BEGIN; SELECT by primary key; UPDATE by primary key; COMMIT
//
// once through the driver itself (raw) and once through sqlwatch with
// everything on (default options, metrics registered on a Prometheus
// registry), alternated round by round — raw, sqlwatch, then sqlwatch,
// raw, ... (ABBA) — so that drift on the machine (other processes, the
// server's caches, autovacuum) falls on both sides. Many short rounds
// beat a few long ones here: disturbances come in bursts, and more
// alternations spread them more evenly over both sides (and give the
// per-round ratios that the confidence interval is computed from). It reports, per
// database × driver × workload, the throughput of each and their ratio,
// and the p50 and p99 latency of each and their ratios.
//
// Each phase also measures how much of the machine's CPU went to other work
// (neither this program nor the database servers: other people's builds
// and tests on a shared machine). Rounds in which that exceeded -max-other
// percent are left out when at least 3 clean rounds remain; otherwise all
// rounds are used and the result is marked NOISY.
//
// Usage:
//
//	go run ./e2e                      # 10 rounds × 1s per variant
//	go run ./e2e -rounds 20 -duration 2s
//	go run ./e2e -short               # 1 round × 200ms: a CI smoke run
//	go run ./e2e -json out.json       # also write the results for cmd/table
//
// DSNs come from $SQLWATCH_POSTGRES_DSN and $SQLWATCH_MYSQL_DSN (defaults
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable and
// root@tcp(127.0.0.1:3306)/test). A database that cannot be reached is
// reported as not measured; with SQLWATCH_REQUIRE_DB=1 it fails the run.
// A round in which errors occurred (a server restarted by someone else,
// say) is repeated, up to 3 times, once the server answers again; the
// repetitions are listed under the table. Errors that remain fail the run
// (after the table).
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/bench/internal/e2eresult"
	"github.com/sqlwatch/sqlwatch/bench/internal/machine"
	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/metrics"
)

const table = "sqlwatch_bench_e2e"

// A target is one database reached through one driver.
type target struct {
	database string // "postgres" or "mysql"; "mysql" becomes "mariadb" when the server says so
	driver   string // short name in the table
	sqlName  string // the name the driver registers with database/sql
	dsn      string
	ph       string // placeholder for the first argument
}

func main() {
	var (
		rounds   = flag.Int("rounds", 10, "rounds; each runs every variant once per workload")
		duration = flag.Duration("duration", time.Second, "how long each variant runs per round")
		clients  = flag.Int("clients", 16, "concurrent clients")
		rows     = flag.Int("rows", 1000, "rows in the table")
		short    = flag.Bool("short", false, "CI smoke run: 1 round × 200ms (overrides -rounds and -duration)")
		jsonOut  = flag.String("json", "", "also write the results to this file, for cmd/table")
		maxOther = flag.Float64("max-other", 10, "a round is clean when other work (not this program, not the database servers) used at most this % of the machine's CPU")
		only     = flag.String("only", "", "comma-separated database/driver pairs to run (e.g. postgres/pgx); default all")
	)
	flag.Parse()
	if *short {
		*rounds, *duration = 1, 200*time.Millisecond
	}
	if *rounds < 1 || *duration <= 0 || *clients < 1 || *rows < 1 {
		fmt.Fprintln(os.Stderr, "e2e: -rounds, -duration, -clients and -rows must be positive")
		os.Exit(2)
	}
	pg := env("SQLWATCH_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	my := env("SQLWATCH_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test")
	targets := []target{
		{"postgres", "pq", "postgres", pg, "$1"},
		{"postgres", "pgx", "pgx", pg, "$1"},
		{"mysql", "mysql", "mysql", my, "?"},
	}
	require := os.Getenv("SQLWATCH_REQUIRE_DB") == "1"

	out := &e2eresult.File{Rounds: *rounds, Duration: *duration, Clients: *clients, MaxOther: *maxOther}
	failed := false
	for _, t := range targets {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), t.database+"/"+t.driver) {
			continue
		}
		// Everything on: sqlwatch's defaults (tracking, stack capture,
		// every misuse detector, default thresholds and logger) under a
		// name of its own.
		if err := driver.RegisterByName(t.sqlName+"+sqlwatch", t.sqlName); err != nil {
			fatal(err)
		}
		res, err := measure(t, *rounds, *duration, *clients, *rows, *maxOther)
		if err != nil {
			var unreachable errUnreachable
			if errors.As(err, &unreachable) && !require {
				fmt.Fprintf(os.Stderr, "e2e: %s/%s not measured: %v\n", t.database, t.driver, err)
			} else {
				fmt.Fprintf(os.Stderr, "e2e: %s/%s FAILED: %v\n", t.database, t.driver, err)
				failed = true
			}
			out.Skipped = append(out.Skipped, e2eresult.Skipped{Database: t.database, Driver: t.driver, Reason: err.Error()})
		}
		out.Results = append(out.Results, res...)
		for _, r := range res {
			if r.Raw.Errors+r.Wrapped.Errors > 0 {
				failed = true
			}
		}
	}
	fmt.Println()
	out.Print(os.Stdout)
	if *jsonOut != "" {
		if err := out.Write(*jsonOut); err != nil {
			fatal(err)
		}
	}
	if failed {
		fmt.Fprintln(os.Stderr, "e2e: FAILED (see above)")
		os.Exit(1)
	}
}

type errUnreachable struct{ error }

func (e errUnreachable) Unwrap() error { return e.error }

// measure runs both workloads on one target.
func measure(t target, rounds int, d time.Duration, clients, nrows int, maxOther float64) ([]e2eresult.Result, error) {
	raw, err := sql.Open(t.sqlName, t.dsn)
	if err != nil {
		return nil, errUnreachable{err}
	}
	defer raw.Close()
	pingCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := raw.PingContext(pingCtx); err != nil {
		return nil, errUnreachable{err}
	}
	var version string
	if err := raw.QueryRowContext(pingCtx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, err
	}
	version, _, _ = strings.Cut(version, " on ") // PostgreSQL's: drop the build details
	if t.database == "mysql" && strings.Contains(strings.ToLower(version), "mariadb") {
		t.database = "mariadb"
	}
	if err := setup(pingCtx, raw, nrows); err != nil {
		return nil, fmt.Errorf("creating %s: %w", table, err)
	}
	defer raw.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)

	wrapped, err := sql.Open(t.sqlName+"+sqlwatch", t.dsn)
	if err != nil {
		return nil, err
	}
	defer wrapped.Close()
	// Metrics on: registering the collector turns the pool's recorder on.
	if err := metrics.Register(prometheus.NewRegistry(), wrapped); err != nil {
		return nil, err
	}
	for _, db := range []*sql.DB{raw, wrapped} {
		// Every client keeps its conn: no reconnects inside a round.
		db.SetMaxOpenConns(clients)
		db.SetMaxIdleConns(clients)
	}

	var results []e2eresult.Result
	for _, w := range workloads(t.ph) {
		r := e2eresult.Result{Database: t.database, Server: version, Driver: t.driver, Workload: w.name}
		// Warm both pools up: conns opened, statements and caches warm.
		warm := min(max(d/2, 100*time.Millisecond), time.Second)
		run(raw, w.op, clients, nrows, warm)
		run(wrapped, w.op, clients, nrows, warm)

		// Per round, per variant (0 raw, 1 sqlwatch): the latencies.
		lats := make([][2][]time.Duration, rounds)
		for i := range rounds {
			order := []int{0, 1}
			if i%2 == 1 {
				order = []int{1, 0}
			}
			var round e2eresult.Round
			for attempt := 1; ; attempt++ {
				round = e2eresult.Round{}
				var firstErr string
				for _, v := range order {
					db, ph := raw, &round.Raw
					if v == 1 {
						db, ph = wrapped, &round.Wrapped
					}
					p := run(db, w.op, clients, nrows, d)
					*ph = e2eresult.Phase{Ops: p.ops, Errors: p.errors, Elapsed: p.elapsed, OtherCPU: p.otherCPU}
					lats[i][v] = p.lat
					if p.firstErr != nil {
						fmt.Fprintf(os.Stderr, "e2e: %s/%s %s round %d (%s): %d errors, first: %v\n",
							t.database, t.driver, w.name, i+1, []string{"raw", "sqlwatch"}[v], p.errors, p.firstErr)
						if firstErr == "" {
							firstErr = fmt.Sprintf("%s: %v", []string{"raw", "sqlwatch"}[v], p.firstErr)
						}
					}
				}
				if firstErr == "" || attempt > maxRetries {
					break
				}
				// Errors: most often the server restarted or killed
				// sessions under us (a shared machine). Wait until both
				// pools answer again and repeat the round; the errors
				// stay on record, and a round that keeps failing is
				// counted with its errors (and fails the run).
				r.Repeated = append(r.Repeated, fmt.Sprintf("round %d: %s", i+1, firstErr))
				fmt.Fprintf(os.Stderr, "e2e: repeating round %d (%d/%d) once the server answers\n", i+1, attempt, maxRetries)
				waitReady(raw, wrapped)
				run(raw, w.op, clients, nrows, warm) // reconnect and re-prepare outside the round
				run(wrapped, w.op, clients, nrows, warm)
			}
			r.Rounds = append(r.Rounds, round)
			fmt.Fprintf(os.Stderr, "%s/%s %-6s round %2d/%d: raw %8.0f ops/s, sqlwatch %8.0f ops/s, ratio %.3f  (other work: %s, %s of the CPU)\n",
				t.database, t.driver, w.name, i+1, rounds,
				float64(round.Raw.Ops)/round.Raw.Elapsed.Seconds(), float64(round.Wrapped.Ops)/round.Wrapped.Elapsed.Seconds(),
				round.Ratio(), pct(round.Raw.OtherCPU), pct(round.Wrapped.OtherCPU))
		}
		summarize(&r, lats, maxOther)
		results = append(results, r)
	}
	return results, nil
}

// maxRetries is how often a round with errors is repeated.
const maxRetries = 3

// waitReady waits (up to a minute) until a query works on every pool.
func waitReady(dbs ...*sql.DB) {
	deadline := time.Now().Add(time.Minute)
	for _, db := range dbs {
		for time.Now().Before(deadline) {
			time.Sleep(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var one int
			err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
			cancel()
			if err == nil {
				break
			}
		}
	}
}

func pct(p float64) string {
	if p < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f%%", p)
}

// summarize marks the rounds used (the clean ones, when there are enough)
// and computes the sides' totals, percentiles and the per-round ratios
// over them. Errors count over every round.
func summarize(r *e2eresult.Result, lats [][2][]time.Duration, maxOther float64) {
	clean := func(p e2eresult.Phase) bool { return p.OtherCPU >= 0 && p.OtherCPU <= maxOther }
	for i := range r.Rounds {
		r.Rounds[i].Used = clean(r.Rounds[i].Raw) && clean(r.Rounds[i].Wrapped)
		if r.Rounds[i].Used {
			r.CleanRounds++
		}
	}
	if r.CleanRounds < e2eresult.MinClean {
		for i := range r.Rounds {
			r.Rounds[i].Used = true
		}
	}
	var rawLat, wLat []time.Duration
	for i, round := range r.Rounds {
		r.Raw.Errors += round.Raw.Errors
		r.Wrapped.Errors += round.Wrapped.Errors
		if !round.Used {
			continue
		}
		r.Raw.Ops += round.Raw.Ops
		r.Raw.Elapsed += round.Raw.Elapsed
		r.Wrapped.Ops += round.Wrapped.Ops
		r.Wrapped.Elapsed += round.Wrapped.Elapsed
		rawLat = append(rawLat, lats[i][0]...)
		wLat = append(wLat, lats[i][1]...)
		r.RoundRatios = append(r.RoundRatios, round.Ratio())
	}
	r.Raw.P50, r.Raw.P99 = percentile(rawLat, 50), percentile(rawLat, 99)
	r.Wrapped.P50, r.Wrapped.P99 = percentile(wLat, 50), percentile(wLat, 99)
}

// setup creates the table afresh with nrows rows.
func setup(ctx context.Context, db *sql.DB, nrows int) error {
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+
		" (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL, n BIGINT NOT NULL)"); err != nil {
		return err
	}
	for lo := 1; lo <= nrows; lo += 500 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + table + " (id, v, n) VALUES ")
		for id := lo; id < lo+500 && id <= nrows; id++ {
			if id > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d, 'row %d', 0)", id, id)
		}
		if _, err := db.ExecContext(ctx, sb.String()); err != nil {
			return err
		}
	}
	return nil
}

type workload struct {
	name string
	op   func(ctx context.Context, db *sql.DB, id int) error
}

func workloads(ph string) []workload {
	sel := "SELECT v FROM " + table + " WHERE id = " + ph
	selN := "SELECT n FROM " + table + " WHERE id = " + ph
	upd := "UPDATE " + table + " SET n = n + 1 WHERE id = " + ph
	return []workload{
		{"select", func(ctx context.Context, db *sql.DB, id int) error {
			var v string
			return db.QueryRowContext(ctx, sel, id).Scan(&v)
		}},
		{"tx", func(ctx context.Context, db *sql.DB, id int) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			var n int64
			if err := tx.QueryRowContext(ctx, selN, id).Scan(&n); err != nil {
				tx.Rollback()
				return err
			}
			if _, err := tx.ExecContext(ctx, upd, id); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		}},
	}
}

type phase struct {
	ops, errors int64
	elapsed     time.Duration
	lat         []time.Duration
	firstErr    error
	otherCPU    float64 // % of the machine's CPU used by other work; -1 unknown
}

// servers are the command names of the database servers' processes: their
// CPU is part of the measurement, not a disturbance.
var servers = []string{"postgres", "mariadbd", "mysqld"}

// run runs op with clients concurrent clients for d, each on random ids,
// and returns the operations that succeeded, their latencies, the errors and the wall time
// from the start until the last client finished its last operation.
func run(db *sql.DB, op func(context.Context, *sql.DB, int) error, clients, nrows int, d time.Duration) phase {
	// Bounded: a hung server fails the operations instead of the run
	// hanging.
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		res phase
		wg  sync.WaitGroup
	)
	before := machine.Sample(servers...)
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(c)))
			lat := make([]time.Duration, 0, 4096)
			var errs int64
			var firstErr error
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := op(ctx, db, 1+rng.IntN(nrows)); err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			res.ops += int64(len(lat))
			res.errors += errs
			res.lat = append(res.lat, lat...)
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.otherCPU = -1
	if p, ok := machine.Other(before, machine.Sample(servers...)); ok {
		res.otherCPU = p
	}
	return res
}

// percentile returns the p-th percentile (nearest rank) of ds; it sorts ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(p/100*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "e2e:", err)
	os.Exit(1)
}
