package otelmetrics_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	_ "modernc.org/sqlite"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
	"github.com/sqlwatch/sqlwatch/metrics/otelmetrics"
)

var seq atomic.Int32

type backend struct {
	name, inner, env string
}

var backends = []backend{
	{"sqlite", "sqlite", ""},
	{"mysql", "mysql", "SQLWATCH_MYSQL_DSN"},
	{"pq", "postgres", "SQLWATCH_POSTGRES_DSN"},
	{"pgx", "pgx", "SQLWATCH_POSTGRES_DSN"},
}

// open opens a pool of b through sqlwatch, with leak reports into reports.
func open(t *testing.T, b backend, reports chan leak.Report) (*sql.DB, string) {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "otel.db")
	if b.env != "" {
		dsn = os.Getenv(b.env)
		if dsn == "" {
			if os.Getenv("SQLWATCH_REQUIRE_DB") == "1" {
				t.Fatalf("%s is not set and SQLWATCH_REQUIRE_DB=1", b.env)
			}
			t.Skipf("%s is not set", b.env)
		}
	}
	n := seq.Add(1)
	drv := fmt.Sprintf("%s+otel-%d", b.inner, n)
	dbName := fmt.Sprintf("otel_%s_%d", b.name, n)
	if err := driver.RegisterByName(drv, b.inner,
		driver.WithDBName(dbName),
		driver.WithThreshold(leak.KindTx, 200*time.Millisecond),
		driver.WithInterval(25*time.Millisecond),
		driver.WithReportFunc(func(r leak.Report) { reports <- r }),
		driver.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(drv, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dbName
}

// Prometheus label -> OpenTelemetry attribute.
var labelOf = map[string]string{
	"db.client.connection.pool.name": "db_name",
	"sqlwatch.operation":             "op",
	"sqlwatch.error.class":           "class",
	"sqlwatch.leak.kind":             "kind",
	"sqlwatch.misuse.kind":           "kind",
	"sqlwatch.conn.state":            "state",
	"sqlwatch.tx.outcome":            "outcome",
}

// OpenTelemetry instrument -> Prometheus series of the same value.
var promOf = map[string]string{
	"db.client.connection.max":            "go_sql_max_open_connections",
	"sqlwatch.connection.waits":           "go_sql_wait_count_total",
	"sqlwatch.connection.wait_time.total": "go_sql_wait_duration_seconds_total",
	"sqlwatch.tx.open":                    "sqlwatch_tx_open",
	"sqlwatch.tx.oldest_age":              "sqlwatch_tx_oldest_age_seconds",
	"sqlwatch.conn.checked_out":           "sqlwatch_conn_checked_out",
	"sqlwatch.conn.oldest_checkout":       "sqlwatch_conn_oldest_checkout_seconds",
	"sqlwatch.leaks":                      "sqlwatch_leaks_total",
	"sqlwatch.pool_wait_alerts":           "sqlwatch_pool_wait_alerts_total",
	"sqlwatch.misuse":                     "sqlwatch_misuse_total",
	"sqlwatch.conn.deaths":                "sqlwatch_conn_deaths_total",
	"sqlwatch.errors":                     "sqlwatch_errors_total",
	"sqlwatch.statements":                 "sqlwatch_statement_duration_seconds_count",
	"sqlwatch.statement.time":             "sqlwatch_statement_duration_seconds_sum",
	"sqlwatch.tx.ended":                   "sqlwatch_tx_duration_seconds_count",
	"sqlwatch.tx.time":                    "sqlwatch_tx_duration_seconds_sum",
	"sqlwatch.conn.holds":                 "sqlwatch_conn_hold_seconds_count",
	"sqlwatch.conn.hold.time":             "sqlwatch_conn_hold_seconds_sum",
}

func key(name string, labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// promValues flattens a registry's series: histograms as _count and _sum.
func promValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.GetHistogram() != nil:
				out[key(mf.GetName()+"_count", labels)] = float64(m.GetHistogram().GetSampleCount())
				out[key(mf.GetName()+"_sum", labels)] = m.GetHistogram().GetSampleSum()
			case m.GetCounter() != nil:
				out[key(mf.GetName(), labels)] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key(mf.GetName(), labels)] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// otelPoint is one observation, under the key of its Prometheus series.
type otelPoint struct {
	name  string
	attrs attribute.Set
	value float64
}

// collect returns sqlwatch's observations in reader's next collection.
func collect(t *testing.T, reader *sdkmetric.ManualReader) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name == otelmetrics.ScopeName {
			out = append(out, sm.Metrics...)
		}
	}
	return out
}

func points(m metricdata.Metrics) []otelPoint {
	var out []otelPoint
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, otelPoint{m.Name, p.Attributes, float64(p.Value)})
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			out = append(out, otelPoint{m.Name, p.Attributes, p.Value})
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			out = append(out, otelPoint{m.Name, p.Attributes, p.Value})
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, otelPoint{m.Name, p.Attributes, float64(p.Value)})
		}
	}
	return out
}

// promKey returns the Prometheus series of an observation ("" if none).
func promKey(t *testing.T, p otelPoint) string {
	labels := map[string]string{}
	name := promOf[p.name]
	for _, kv := range p.attrs.ToSlice() {
		k, v := string(kv.Key), kv.Value.AsString()
		switch {
		case p.name == "db.client.connection.count" && k == "db.client.connection.state":
			name = map[string]string{"idle": "go_sql_idle_connections", "used": "go_sql_in_use_connections"}[v]
		case p.name == "sqlwatch.connection.closed" && k == "sqlwatch.close.reason":
			name = "go_sql_" + v + "_closed_total"
		case labelOf[k] != "":
			labels[labelOf[k]] = v
		default:
			t.Errorf("%s: unexpected attribute %s", p.name, k)
		}
	}
	if name == "" {
		return ""
	}
	return key(name, labels)
}

// The semantic conventions for database client metrics (connection
// pools), https://opentelemetry.io/docs/specs/semconv/database/database-metrics/:
// instrument, unit and the attributes they require.
var semconv = map[string]struct {
	upDown bool
	unit   string
	attrs  []string
}{
	"db.client.connection.count": {true, "{connection}", []string{"db.client.connection.pool.name", "db.client.connection.state"}},
	"db.client.connection.max":   {true, "{connection}", []string{"db.client.connection.pool.name"}},
}

var (
	ownName = regexp.MustCompile(`^sqlwatch(\.[a-z][a-z0-9_]*)+$`)
	ownAttr = regexp.MustCompile(`^(sqlwatch(\.[a-z][a-z0-9_]*)+|db\.client\.connection\.pool\.name)$`)
)

func checkNames(t *testing.T, ms []metricdata.Metrics) {
	t.Helper()
	for _, m := range ms {
		if sc, ok := semconv[m.Name]; ok {
			sum, isSum := m.Data.(metricdata.Sum[int64])
			if !isSum || sum.IsMonotonic != !sc.upDown || m.Unit != sc.unit {
				t.Errorf("%s: %T (monotonic %v), unit %q; the semantic conventions want an UpDownCounter in %s", m.Name, m.Data, sum.IsMonotonic, m.Unit, sc.unit)
			}
			for _, p := range points(m) {
				for _, a := range sc.attrs {
					if _, ok := p.attrs.Value(attribute.Key(a)); !ok {
						t.Errorf("%s: no %s", m.Name, a)
					}
				}
				if v, ok := p.attrs.Value("db.client.connection.state"); ok && v.AsString() != "idle" && v.AsString() != "used" {
					t.Errorf("%s: state %q", m.Name, v.AsString())
				}
			}
			continue
		}
		if strings.HasPrefix(m.Name, "db.") {
			t.Errorf("%s: in the db. namespace but not in the semantic conventions", m.Name)
		}
		if !ownName.MatchString(m.Name) || strings.HasSuffix(m.Name, "_total") || m.Unit == "" {
			t.Errorf("%s (unit %q): not an OpenTelemetry-style sqlwatch name with a unit", m.Name, m.Unit)
		}
		for _, p := range points(m) {
			for _, kv := range p.attrs.ToSlice() {
				if !ownAttr.MatchString(string(kv.Key)) {
					t.Errorf("%s: attribute %s outside sqlwatch.*", m.Name, kv.Key)
				}
			}
		}
	}
}

func TestMatchesPrometheus(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testMatches(t, b) })
	}
}

func testMatches(t *testing.T, b backend) {
	reports := make(chan leak.Report, 10)
	db, dbName := open(t, b, reports)
	db.SetMaxOpenConns(5)
	reg := prometheus.NewPedanticRegistry()
	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	unregister, err := otelmetrics.Register(db, mp)
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()

	ctx := context.Background()
	table := "otel_" + strings.ReplaceAll(dbName, "-", "_")
	mustExec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	mustExec("DROP TABLE IF EXISTS " + table)
	defer db.Exec("DROP TABLE IF EXISTS " + table)
	mustExec("CREATE TABLE " + table + " (id INT PRIMARY KEY)")
	mustExec("INSERT INTO " + table + " VALUES (1)")
	// A constraint error.
	if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1)"); err == nil {
		t.Fatal("duplicate key inserted")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != 1 {
		t.Fatalf("count: %d, %v", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A transaction left open until it is reported.
	leaked, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leaked.Rollback()
	select {
	case <-reports:
	case <-time.After(5 * time.Second):
		t.Fatal("no leak report")
	}

	ms := collect(t, reader)
	prom := promValues(t, reg)
	checkNames(t, ms)
	checked := 0
	seen := map[string]float64{}
	for _, m := range ms {
		for _, p := range points(m) {
			k := promKey(t, p)
			if k == "" {
				t.Errorf("%s %v: no Prometheus counterpart", p.name, p.attrs.ToSlice())
				continue
			}
			want, ok := prom[k]
			if !ok {
				t.Errorf("%s: Prometheus has no %s", p.name, k)
				continue
			}
			tol := 1e-9
			if strings.HasSuffix(p.name, "oldest_age") || strings.HasSuffix(p.name, "oldest_checkout") {
				tol = 1 // read a moment apart
			}
			if math.Abs(p.value-want) > tol {
				t.Errorf("%s = %v; Prometheus %s = %v", p.name, p.value, k, want)
			}
			seen[k] = p.value
			checked++
		}
	}
	// The work above shows in the values compared.
	for k, want := range map[string]float64{
		key("sqlwatch_tx_open", map[string]string{"db_name": dbName}):                                           1,
		key("sqlwatch_leaks_total", map[string]string{"db_name": dbName, "kind": "tx"}):                         1,
		key("sqlwatch_errors_total", map[string]string{"db_name": dbName, "op": "exec", "class": "constraint"}): 1,
		key("sqlwatch_tx_duration_seconds_count", map[string]string{"db_name": dbName, "outcome": "commit"}):    1,
		key("go_sql_in_use_connections", map[string]string{"db_name": dbName}):                                  1,
	} {
		if seen[k] != want {
			t.Errorf("%s = %v; want %v", k, seen[k], want)
		}
	}
	if seen[key("sqlwatch_tx_oldest_age_seconds", map[string]string{"db_name": dbName})] < 0.2 {
		t.Error("oldest transaction younger than the threshold it was reported at")
	}
	t.Logf("%d observations equal to the Prometheus collector's", checked)
	if checked < 50 {
		t.Errorf("only %d observations compared", checked)
	}
}

func TestUnregister(t *testing.T) {
	db, _ := open(t, backends[0], make(chan leak.Report, 10))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	unregister, err := otelmetrics.Register(db, mp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	// Register alone turns the pool's recording on.
	var execs float64 = -1
	for _, m := range collect(t, reader) {
		for _, p := range points(m) {
			if op, _ := p.attrs.Value("sqlwatch.operation"); p.name == "sqlwatch.statements" && op.AsString() == "exec" {
				execs = p.value
			}
		}
	}
	if execs != 1 {
		t.Fatalf("sqlwatch.statements{exec} = %v; want 1", execs)
	}
	if err := unregister(); err != nil {
		t.Fatal(err)
	}
	if err := unregister(); err != nil {
		t.Fatalf("second unregister: %v", err)
	}
	for _, m := range collect(t, reader) {
		if len(points(m)) > 0 {
			t.Errorf("%s still observed after unregister", m.Name)
		}
	}
}

func TestNotWatched(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := otelmetrics.Register(db, mp); !errors.Is(err, otelmetrics.ErrNotWatched) || !errors.Is(err, leak.ErrNotWatched) {
		t.Errorf("plain pool: %v; want ErrNotWatched", err)
	}
	if _, err := otelmetrics.Register(nil, mp); !errors.Is(err, otelmetrics.ErrNotWatched) {
		t.Errorf("nil pool: %v; want ErrNotWatched", err)
	}
	if _, err := otelmetrics.Register(db, nil); !errors.Is(err, otelmetrics.ErrNilMeterProvider) {
		t.Errorf("nil provider: %v; want ErrNilMeterProvider", err)
	}
}
