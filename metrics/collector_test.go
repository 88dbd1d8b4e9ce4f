package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
)

func openDB(t *testing.T, name string, opts ...driver.Option) *sql.DB {
	t.Helper()
	opts = append([]driver.Option{driver.WithDBName(name), driver.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCollector(t *testing.T) {
	reports := make(chan leak.Report, 10)
	db := openDB(t, "shop", driver.WithThreshold(leak.KindTx, 20*time.Millisecond),
		driver.WithReportFunc(func(r leak.Report) { reports <- r }))
	reg := prometheus.NewPedanticRegistry()
	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Two commits, a rollback, a failing exec, a cancelled query, and a tx
	// left open long enough to be reported.
	for range 2 {
		tx, _ := db.BeginTx(ctx, nil)
		tx.ExecContext(ctx, "UPDATE x")
		tx.Commit()
	}
	tx, _ := db.BeginTx(ctx, nil)
	tx.Rollback()
	var fe *fakedb.Error
	if _, err := db.ExecContext(ctx, "ERROR 1213 deadlock"); !errors.As(err, &fe) {
		t.Fatalf("got %v; want the driver's error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	db.QueryContext(cctx, "SELECT ROWS 1")
	leaked, _ := db.BeginTx(ctx, nil)
	<-reports
	defer leaked.Rollback()

	want := `
# HELP sqlwatch_conn_checked_out Connections checked out of the pool now.
# TYPE sqlwatch_conn_checked_out gauge
sqlwatch_conn_checked_out{db_name="shop"} 1
# HELP sqlwatch_leaks_total Leak reports logged, by kind of resource.
# TYPE sqlwatch_leaks_total counter
sqlwatch_leaks_total{db_name="shop",kind="conn"} 0
sqlwatch_leaks_total{db_name="shop",kind="rows"} 0
sqlwatch_leaks_total{db_name="shop",kind="stmt"} 0
sqlwatch_leaks_total{db_name="shop",kind="tx"} 1
# HELP sqlwatch_pool_wait_alerts_total Pool-wait alerts raised (mean wait over the limit, or a stalled pool).
# TYPE sqlwatch_pool_wait_alerts_total counter
sqlwatch_pool_wait_alerts_total{db_name="shop"} 0
# HELP sqlwatch_tx_open Transactions open now.
# TYPE sqlwatch_tx_open gauge
sqlwatch_tx_open{db_name="shop"} 1
# HELP go_sql_in_use_connections The number of connections currently in use.
# TYPE go_sql_in_use_connections gauge
go_sql_in_use_connections{db_name="shop"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"sqlwatch_conn_checked_out", "sqlwatch_leaks_total",
		"sqlwatch_pool_wait_alerts_total", "sqlwatch_tx_open", "go_sql_in_use_connections"); err != nil {
		t.Error(err)
	}

	// Histograms: counts by label.
	count := func(name string, labels map[string]string) uint64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
						continue next
					}
				}
				return m.GetHistogram().GetSampleCount()
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	f := func(name string, labels map[string]string, want uint64) {
		t.Helper()
		if got := count(name, labels); got != want {
			t.Errorf("%s%v: got %d; want %d", name, labels, got, want)
		}
	}
	f("sqlwatch_tx_duration_seconds", map[string]string{"outcome": "commit"}, 2)
	f("sqlwatch_tx_duration_seconds", map[string]string{"outcome": "rollback"}, 1)
	f("sqlwatch_tx_duration_seconds", map[string]string{"outcome": "error"}, 0)
	f("sqlwatch_statement_duration_seconds", map[string]string{"op": "begin"}, 4)
	f("sqlwatch_statement_duration_seconds", map[string]string{"op": "exec"}, 3)
	f("sqlwatch_statement_duration_seconds", map[string]string{"op": "commit"}, 2)
	f("sqlwatch_conn_hold_seconds", nil, 4) // 3 tx + the failing exec; the cancelled query never got a conn

	// Errors: one, an exec, of class other; every op×class series exists.
	mfs, _ := reg.Gather()
	var errSeries int
	for _, mf := range mfs {
		if mf.GetName() != "sqlwatch_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			errSeries++
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			want := 0.0
			if labels["op"] == "exec" && labels["class"] == "other" {
				want = 1
			}
			if got := m.GetCounter().GetValue(); got != want {
				t.Errorf("sqlwatch_errors_total%v = %v; want %v", labels, got, want)
			}
		}
	}
	if errSeries != 6*9 {
		t.Errorf("got %d error series; want 6 ops × 9 classes", errSeries)
	}

	n, err := testutil.GatherAndCount(reg, "sqlwatch_tx_oldest_age_seconds")
	if err != nil || n != 1 {
		t.Errorf("oldest tx age: %d series, %v", n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestRegisterErrors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := openDB(t, "orders")
	if err := metrics.Register(reg, a); err != nil {
		t.Fatal(err)
	}
	f := func(err, want error) {
		t.Helper()
		if !errors.Is(err, want) || !strings.HasPrefix(err.Error(), "sqlwatch: ") {
			t.Errorf("got %v; want %v", err, want)
		}
	}
	f(metrics.Register(reg, a), metrics.ErrAlreadyRegistered)
	f(metrics.Register(reg, openDB(t, "orders")), metrics.ErrAlreadyRegistered)
	f(metrics.Register(nil, a), metrics.ErrNilRegisterer)
	f(metrics.Register(reg, fakedb.New(fakedb.Full).OpenDB()), leak.ErrNotWatched)
	f(metrics.Register(reg, nil), leak.ErrNotWatched)
	if err := metrics.Register(reg, openDB(t, "payments")); err != nil {
		t.Errorf("a second pool with its own name: %v", err)
	}
}

// TestNothingRecordedUnregistered: before registration the driver does
// not time operations.
func TestNothingRecordedUnregistered(t *testing.T) {
	db := openDB(t, "quiet")
	db.Exec("INSERT x")
	c, err := metrics.New(db)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	execs := func() uint64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "sqlwatch_statement_duration_seconds" {
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "op" && l.GetValue() == "exec" {
							return m.GetHistogram().GetSampleCount()
						}
					}
				}
			}
		}
		return 0
	}
	if n := execs(); n != 0 {
		t.Errorf("got %d execs recorded from before registration; want 0", n)
	}
	db.Exec("INSERT x")
	if n := execs(); n != 1 {
		t.Errorf("got %d execs after registration; want 1", n)
	}
}

// TestFailedRegisterRecordsNothing: a Register that fails (the pool's
// db_name is taken on that registry) leaves the pool's hot-path
// recording off, as it was.
func TestFailedRegisterRecordsNothing(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := metrics.Register(reg, openDB(t, "orders")); err != nil {
		t.Fatal(err)
	}
	b := openDB(t, "orders")
	if err := metrics.Register(reg, b); !errors.Is(err, metrics.ErrAlreadyRegistered) {
		t.Fatalf("got %v; want ErrAlreadyRegistered", err)
	}
	rec := b.Driver().(interface{ Recorder() *record.Recorder }).Recorder()
	if rec.Enabled() {
		t.Error("the refused pool records its statements")
	}
	// Registered where its name is free, it records.
	if err := metrics.Register(prometheus.NewPedanticRegistry(), b); err != nil {
		t.Fatal(err)
	}
	if !rec.Enabled() {
		t.Error("the registered pool does not record")
	}
}
