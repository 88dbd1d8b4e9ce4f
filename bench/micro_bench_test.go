package bench

// Micro-benchmarks: the wrapper's own cost per database/sql operation,
// over the in-memory fake driver (internal/fakedb, profile Full), so the
// driver costs next to nothing and only the wrapper shows.
//
// Benchmarks are named so that one table can be built from them:
//
//	Benchmark<Op>/<variant>          serial (b.Loop)
//	Benchmark<Op>Parallel/<variant>  b.RunParallel (GOMAXPROCS goroutines)
//
// with Op in Exec, Query, Tx, PrepareExec and variant in raw, sqlmw,
// sqlwatch, sqlwatch-metrics, otelsql (see the variants table below).
// Each also reports "other-cpu%", the share of the machine's CPU other
// processes used while it ran (internal/machine). cmd/table turns
// `go test -bench` output into the table and checks the budgets.

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"log/slog"
	"testing"

	"github.com/XSAM/otelsql"
	"github.com/ngrok/sqlmw"
	"github.com/prometheus/client_golang/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/sqlwatch/sqlwatch/bench/internal/machine"
	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
)

// A variant opens a fresh pool over a fresh fake database and registers
// the cleanup of everything it created.
type variant struct {
	name string
	open func(b *testing.B) *sql.DB
}

// variants, in table order.
var variants = []variant{
	{"raw", openRaw},
	{"sqlmw", openSQLMW},
	{"sqlwatch", openSQLWatch},
	{"sqlwatch-metrics", openSQLWatchMetrics},
	{"otelsql", openOtelSQL},
}

// discard keeps the benchmarks' output clean. Nothing is ever reported in
// these benchmarks (no resource stays open for a minute, no misuse), so
// the logger is never called on the hot path; it only silences a report
// that would mean a bug.
var discard = slog.New(slog.DiscardHandler)

// raw: the fake driver itself, through database/sql.
func openRaw(b *testing.B) *sql.DB {
	return fakedb.New(fakedb.Full).OpenDB()
}

// sqlmw: github.com/ngrok/sqlmw with an empty interceptor, the floor of
// what any wrapping driver costs.
func openSQLMW(b *testing.B) *sql.DB {
	return sql.OpenDB(sqlmwConnector{fakedb.New(fakedb.Full)})
}

type sqlmwConnector struct{ fd *fakedb.Driver }

func (c sqlmwConnector) Connect(context.Context) (sqldriver.Conn, error) {
	return c.Driver().Open("")
}

func (c sqlmwConnector) Driver() sqldriver.Driver {
	return sqlmw.Driver(c.fd.Driver(), sqlmw.NullInterceptor{})
}

// sqlwatch: everything on. Default options (tracking with the default
// thresholds, stack capture, every misuse detector) and the Prometheus
// collector registered on a fresh registry, which turns the pool's
// hot-path recorder on.
func openSQLWatch(b *testing.B) *sql.DB {
	return openWatched(b, driver.WithLogger(discard))
}

// sqlwatch-metrics: as close to "metrics only" as sqlwatch goes. Every
// misuse detector is off and every leak threshold is 0 (no reporting, so
// the watchdog has nothing to report), the collector is registered.
// Tracking itself cannot be turned off: every tx, checkout, rows and
// statement is still registered with the pool's tracker (and its origin
// captured), because that is what the library is; this variant shows what
// the detectors and reporting cost on top of it, not a tracking-free
// sqlwatch.
func openSQLWatchMetrics(b *testing.B) *sql.DB {
	opts := []driver.Option{driver.WithLogger(discard), driver.WithoutDetectors(leak.MisuseKinds()...)}
	for _, k := range leak.Kinds() {
		opts = append(opts, driver.WithThreshold(k, 0))
	}
	return openWatched(b, opts...)
}

func openWatched(b *testing.B, opts ...driver.Option) *sql.DB {
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(c)
	if err := metrics.Register(prometheus.NewRegistry(), db); err != nil {
		b.Fatal(err)
	}
	return db
}

// otelsql: github.com/XSAM/otelsql with metrics only.
//
//   - No tracing: otelsql.WithTracerProvider(noop) — otelsql still calls
//     Tracer.Start on every operation, which on the no-op provider returns
//     a non-recording span without allocating.
//   - A real metrics pipeline: otelsql.WithMeterProvider with an
//     OpenTelemetry SDK MeterProvider over a ManualReader, so each
//     operation's db.client.operation.duration measurement is aggregated
//     into the SDK's histogram (as an application exporting metrics
//     would; the reader is simply never collected, as the Prometheus
//     registry of the sqlwatch variants is never scraped). Not the global
//     (no-op by default) meter provider, which would record nothing.
//   - otelsql.RegisterDBStatsMetrics on the same provider: pool statistics
//     as observable instruments, the counterpart of the go_sql_* DBStats
//     collector that metrics.Register includes. They cost nothing per
//     operation (read at collection only).
//   - Otherwise otelsql's defaults: no extra attributes, no SQL commenter.
func openOtelSQL(b *testing.B) *sql.DB {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { mp.Shutdown(context.Background()) })
	opts := []otelsql.Option{
		otelsql.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelsql.WithMeterProvider(mp),
	}
	db := otelsql.OpenDB(fakedb.New(fakedb.Full).Connector(), opts...)
	reg, err := otelsql.RegisterDBStatsMetrics(db, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Unregister() })
	return db
}

// run runs op against every variant, serially or in parallel.
func run(b *testing.B, parallel bool, op func(ctx context.Context, db *sql.DB) error) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			db := v.open(b)
			// Cleanups run last-in first-out: the pool closes before
			// the metrics pipeline of the variant shuts down.
			b.Cleanup(func() { db.Close() })
			// Enough idle conns that RunParallel's goroutines never
			// close and reopen conns (database/sql keeps 2 by default).
			db.SetMaxIdleConns(64)
			ctx := context.Background()
			// Warm the pool: the first conn's open is not part of any
			// operation's cost.
			if err := op(ctx, db); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			// How busy the rest of the machine was meanwhile, for
			// cmd/table to tell clean samples from disturbed ones.
			start := machine.Sample()
			defer func() {
				if p, ok := machine.Other(start, machine.Sample()); ok {
					b.ReportMetric(p, "other-cpu%")
				}
			}()
			if !parallel {
				for b.Loop() {
					if err := op(ctx, db); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(ctx, db); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// The operations. Query texts are fakedb's language: "SELECT ROWS 1" is a
// one-row result set, anything else executes and returns a result.

func opExec(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, "INSERT x", 1)
	return err
}

func opQuery(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "SELECT ROWS 1")
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

func opTx(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE x", 1); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func opPrepareExec(ctx context.Context, db *sql.DB) error {
	st, err := db.PrepareContext(ctx, "INSERT x")
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(ctx, 1); err != nil {
		st.Close()
		return err
	}
	return st.Close()
}

// ExecContext.
func BenchmarkExec(b *testing.B)         { run(b, false, opExec) }
func BenchmarkExecParallel(b *testing.B) { run(b, true, opExec) }

// QueryContext + Next + Close.
func BenchmarkQuery(b *testing.B)         { run(b, false, opQuery) }
func BenchmarkQueryParallel(b *testing.B) { run(b, true, opQuery) }

// BeginTx + Exec + Commit.
func BenchmarkTx(b *testing.B)         { run(b, false, opTx) }
func BenchmarkTxParallel(b *testing.B) { run(b, true, opTx) }

// Prepare + Exec (+ Stmt.Close, which every correct caller pays).
func BenchmarkPrepareExec(b *testing.B)         { run(b, false, opPrepareExec) }
func BenchmarkPrepareExecParallel(b *testing.B) { run(b, true, opPrepareExec) }
