package otelmetrics_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
	"github.com/sqlwatch/sqlwatch/metrics/otelmetrics"
)

// newReader returns a manual reader of p, registered with a meter
// provider as a reader must be to collect.
func newReader(t *testing.T, p sdkmetric.Producer) *sdkmetric.ManualReader {
	t.Helper()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return reader
}

// histograms returns the histograms of sqlwatch's scope in reader's next
// collection, by name.
func histograms(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	out := map[string]metricdata.Metrics{}
	for _, m := range collect(t, reader) {
		if _, ok := m.Data.(metricdata.Histogram[float64]); ok {
			out[m.Name] = m
		}
	}
	return out
}

// promHistograms returns the histograms of a registry by their series key.
func promHistograms(t *testing.T, reg *prometheus.Registry) map[string]*dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				out[key(mf.GetName(), labels)] = h
			}
		}
	}
	return out
}

// The histograms: Prometheus family, unit, the attribute that tells the
// series apart (its Prometheus label), and the attributes every point
// must carry.
var histSpec = map[string]struct {
	prom, label, attr string
}{
	"db.client.operation.duration":  {"sqlwatch_statement_duration_seconds", "op", "sqlwatch.operation"},
	"db.client.connection.use_time": {"sqlwatch_conn_hold_seconds", "", ""},
	"sqlwatch.tx.duration":          {"sqlwatch_tx_duration_seconds", "outcome", "sqlwatch.tx.outcome"},
}

func TestProducerMatchesPrometheus(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testProducer(t, b) })
	}
}

func testProducer(t *testing.T, b backend) {
	before := time.Now()
	db, dbName := open(t, b, make(chan leak.Report, 10))
	reg := prometheus.NewPedanticRegistry()
	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}
	var opts []otelmetrics.ProducerOption
	wantSystem := map[string]string{"sqlite": "sqlite", "pq": "postgresql", "pgx": "postgresql"}[b.name]
	if b.name == "mysql" {
		// go-sql-driver/mysql speaks to MySQL and MariaDB: none unless given.
		wantSystem = "mariadb"
		opts = append(opts, otelmetrics.WithSystemName(wantSystem))
	}
	p, err := otelmetrics.NewProducer(db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reader := newReader(t, p)

	ctx := context.Background()
	table := "otelp_" + dbName
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
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	afterWork := time.Now()

	hs := histograms(t, reader)
	prom := promHistograms(t, reg)
	counts := map[string]uint64{}
	compared := 0
	for name, spec := range histSpec {
		m, ok := hs[name]
		if !ok {
			t.Errorf("%s not emitted", name)
			continue
		}
		if m.Unit != "s" || m.Description == "" {
			t.Errorf("%s: unit %q, description %q; want s and a description", name, m.Unit, m.Description)
		}
		h := m.Data.(metricdata.Histogram[float64])
		if h.Temporality != metricdata.CumulativeTemporality {
			t.Errorf("%s: temporality %v; want cumulative", name, h.Temporality)
		}
		for _, dp := range h.DataPoints {
			labels := map[string]string{"db_name": dbName}
			var series string
			for _, kv := range dp.Attributes.ToSlice() {
				k, v := string(kv.Key), kv.Value.AsString()
				switch {
				case k == "db.client.connection.pool.name":
					if v != dbName {
						t.Errorf("%s: pool name %q; want %q", name, v, dbName)
					}
				case k == spec.attr:
					labels[spec.label] = v
					series = v
				case k == "db.operation.name" && name == "db.client.operation.duration":
				case k == "db.system.name" && name == "db.client.operation.duration":
					if v != wantSystem {
						t.Errorf("%s: db.system.name %q; want %q", name, v, wantSystem)
					}
				default:
					t.Errorf("%s: unexpected attribute %s=%s", name, k, v)
				}
			}
			if _, ok := dp.Attributes.Value("db.client.connection.pool.name"); !ok {
				t.Errorf("%s: no db.client.connection.pool.name", name)
			}
			if name == "db.client.operation.duration" {
				op, _ := dp.Attributes.Value("db.operation.name")
				want := map[string]string{"begin": "BEGIN", "commit": "COMMIT", "rollback": "ROLLBACK"}[series]
				if op.AsString() != want {
					t.Errorf("%s{%s}: db.operation.name %q; want %q", name, series, op.AsString(), want)
				}
				if _, ok := dp.Attributes.Value("db.system.name"); ok != (wantSystem != "") {
					t.Errorf("%s{%s}: db.system.name present %v; want %v", name, series, ok, wantSystem != "")
				}
			}
			// Cumulative since the pool's recording started, which
			// metrics.Register did after open.
			if dp.StartTime.Before(before) || dp.StartTime.After(afterWork) || dp.Time.Before(afterWork) {
				t.Errorf("%s{%s}: start %v, time %v; want start between %v and %v, time after", name, series, dp.StartTime, dp.Time, before, afterWork)
			}
			if len(dp.BucketCounts) != len(dp.Bounds)+1 {
				t.Errorf("%s{%s}: %d bucket counts for %d bounds", name, series, len(dp.BucketCounts), len(dp.Bounds))
			}
			var total uint64
			for _, c := range dp.BucketCounts {
				total += c
			}
			if total != dp.Count {
				t.Errorf("%s{%s}: buckets add up to %d; count %d", name, series, total, dp.Count)
			}
			k := key(spec.prom, labels)
			ph, ok := prom[k]
			if !ok {
				t.Errorf("%s{%s}: Prometheus has no %s", name, series, k)
				continue
			}
			if dp.Count != ph.GetSampleCount() || math.Abs(dp.Sum-ph.GetSampleSum()) > 1e-9 {
				t.Errorf("%s{%s}: count %d, sum %v; Prometheus %s: %d, %v", name, series, dp.Count, dp.Sum, k, ph.GetSampleCount(), ph.GetSampleSum())
			}
			if len(ph.GetBucket()) != len(dp.Bounds) {
				t.Errorf("%s{%s}: %d bounds; Prometheus %d", name, series, len(dp.Bounds), len(ph.GetBucket()))
				continue
			}
			var cum uint64
			for i, pb := range ph.GetBucket() {
				cum += dp.BucketCounts[i]
				if dp.Bounds[i] != pb.GetUpperBound() || cum != pb.GetCumulativeCount() {
					t.Errorf("%s{%s}: bucket %d le=%v cumulative %d; Prometheus le=%v %d", name, series, i, dp.Bounds[i], cum, pb.GetUpperBound(), pb.GetCumulativeCount())
				}
			}
			counts[name+"{"+series+"}"] = dp.Count
			compared++
		}
	}
	if compared != 10 { // 6 operations, 1 use time, 3 outcomes
		t.Errorf("%d data points compared; want 10", compared)
	}
	// The work above shows in them: four execs and six checkouts (the
	// table's and the two transactions').
	for k, want := range map[string]uint64{
		"db.client.operation.duration{exec}":     4,
		"db.client.operation.duration{query}":    1,
		"db.client.operation.duration{begin}":    2,
		"db.client.operation.duration{commit}":   1,
		"db.client.operation.duration{rollback}": 1,
		"db.client.connection.use_time{}":        6,
		"sqlwatch.tx.duration{commit}":           1,
		"sqlwatch.tx.duration{rollback}":         1,
	} {
		if counts[k] != want {
			t.Errorf("%s count = %d; want %d", k, counts[k], want)
		}
	}
}

// countingProducer counts the calls to the producer it wraps.
type countingProducer struct {
	sdkmetric.Producer
	calls atomic.Int64
}

func (c *countingProducer) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	c.calls.Add(1)
	return c.Producer.Produce(ctx)
}

// opCount returns the count of db.client.operation.duration{op}.
func opCount(t *testing.T, reader *sdkmetric.ManualReader, op string) uint64 {
	t.Helper()
	m, ok := histograms(t, reader)["db.client.operation.duration"]
	if !ok {
		t.Fatal("db.client.operation.duration not emitted")
	}
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		if v, _ := dp.Attributes.Value("sqlwatch.operation"); v.AsString() == op {
			return dp.Count
		}
	}
	t.Fatalf("no db.client.operation.duration{%s}", op)
	return 0
}

// TestProducerNothingPerStatement: statements only feed the histograms
// sqlwatch keeps anyway; the producer is called at collection only, and
// a statement allocates no more than with the Prometheus collector alone.
func TestProducerNothingPerStatement(t *testing.T) {
	db, _ := open(t, backends[0], make(chan leak.Report, 10))
	p, err := otelmetrics.NewProducer(db)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cp := &countingProducer{Producer: p}
	reader := newReader(t, cp)
	const n = 200
	for range n {
		if _, err := db.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := cp.calls.Load(); got != 0 {
		t.Fatalf("Produce called %d times by %d statements; want 0", got, n)
	}
	if got := opCount(t, reader, "exec"); got != n {
		t.Fatalf("exec count = %d; want %d", got, n)
	}
	if got := cp.calls.Load(); got != 1 {
		t.Fatalf("Produce called %d times by one collection", got)
	}

	// The same statement on a pool exported by the Prometheus collector
	// only allocates as much.
	dbProm, _ := open(t, backends[0], make(chan leak.Report, 10))
	if err := metrics.Register(prometheus.NewRegistry(), dbProm); err != nil {
		t.Fatal(err)
	}
	exec := func(db *sql.DB) func() {
		return func() {
			if _, err := db.Exec("SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	withProducer := testing.AllocsPerRun(500, exec(db))
	withProm := testing.AllocsPerRun(500, exec(dbProm))
	t.Logf("allocations per statement: %v with the producer, %v with the Prometheus collector", withProducer, withProm)
	if withProducer > withProm {
		t.Errorf("a statement allocates %v times with the producer; %v with the Prometheus collector", withProducer, withProm)
	}
}

func TestProducerClose(t *testing.T) {
	db, _ := open(t, backends[0], make(chan leak.Report, 10))
	p, err := otelmetrics.NewProducer(db)
	if err != nil {
		t.Fatal(err)
	}
	reader := newReader(t, p)
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	// NewProducer alone turns the pool's recording on.
	if got := opCount(t, reader, "exec"); got != 1 {
		t.Fatalf("exec count = %d; want 1", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if sm, err := p.Produce(context.Background()); sm != nil || err != nil {
		t.Fatalf("Produce after Close = %v, %v; want nothing", sm, err)
	}
	if hs := histograms(t, reader); len(hs) != 0 {
		t.Fatalf("%d histograms after Close", len(hs))
	}
	// Recording is off again: this statement is not counted.
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	p2, err := otelmetrics.NewProducer(db)
	if err != nil {
		t.Fatal(err)
	}
	reader2 := newReader(t, p2)
	if got := opCount(t, reader2, "exec"); got != 1 {
		t.Fatalf("exec count after Close = %d; want 1 (nothing recorded while off)", got)
	}

	p2.Close()

	// Close leaves recording on when another exporter had turned it on.
	reg := prometheus.NewRegistry()
	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}
	p3, err := otelmetrics.NewProducer(db)
	if err != nil {
		t.Fatal(err)
	}
	p3.Close()
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	hs := promHistograms(t, reg)
	var execs uint64
	for k, h := range hs {
		if strings.HasPrefix(k, "sqlwatch_statement_duration_seconds{") && strings.Contains(k, "op=exec") {
			execs = h.GetSampleCount()
		}
	}
	if execs != 2 {
		t.Fatalf("Prometheus exec count = %d; want 2 (recording kept on for the collector)", execs)
	}
}

func TestProducerNotWatched(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := otelmetrics.NewProducer(db); !errors.Is(err, otelmetrics.ErrNotWatched) {
		t.Errorf("plain pool: %v; want ErrNotWatched", err)
	}
	if _, err := otelmetrics.NewProducer(nil); !errors.Is(err, otelmetrics.ErrNotWatched) {
		t.Errorf("nil pool: %v; want ErrNotWatched", err)
	}
}

// TestProducerWithRegister: the producer and Register on one reader and
// one pool give one scope's instruments, the histograms' counts equal to
// Register's count counters.
func TestProducerWithRegister(t *testing.T) {
	db, _ := open(t, backends[0], make(chan leak.Report, 10))
	p, err := otelmetrics.NewProducer(db)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	unregister, err := otelmetrics.Register(db, mp)
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	for range 3 {
		if _, err := db.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	var fromCounter float64
	var fromHist uint64
	var names []string
	for _, m := range collect(t, reader) {
		names = append(names, m.Name)
		exec := attribute.String("sqlwatch.operation", "exec")
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				if v, _ := dp.Attributes.Value(exec.Key); m.Name == "sqlwatch.statements" && v == exec.Value {
					fromCounter = float64(dp.Value)
				}
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				if v, _ := dp.Attributes.Value(exec.Key); m.Name == "db.client.operation.duration" && v == exec.Value {
					fromHist = dp.Count
				}
			}
		}
	}
	if fromCounter != 3 || fromHist != 3 {
		t.Fatalf("sqlwatch.statements{exec} = %v, db.client.operation.duration{exec} count = %d; want 3 and 3 (instruments %v)", fromCounter, fromHist, names)
	}
}
