package otelmetrics

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

var _ sdkmetric.Producer = (*Producer)(nil)

// Producer is an OpenTelemetry SDK [sdkmetric.Producer] of one pool's
// duration histograms, with their buckets: db.client.operation.duration,
// db.client.connection.use_time and sqlwatch.tx.duration (see
// docs/opentelemetry.md). A reader takes it with [sdkmetric.WithProducer];
// it reads the histograms sqlwatch keeps for the Prometheus collector at
// collection time only, so statements pay nothing for it.
//
// The histograms are cumulative, with the same StartTime at every
// collection: the first time the pool's recording was turned on, by
// NewProducer, [Register] or metrics.Register, whichever came first. Nothing is recorded while
// recording is off, so a pool whose collectors were all unregistered for
// a while has a gap in its counts, not a new start.
//
// Produce and Close are safe for concurrent use.
type Producer struct {
	rec *record.Recorder
	t   *track.Tracker

	stmt [record.NumOps]attribute.Set
	tx   [len(record.TxOutcomes)]attribute.Set
	hold attribute.Set

	mu     sync.Mutex
	closed bool
	wasOn  bool // recording was on at NewProducer: Close leaves it on
}

// ProducerOption configures NewProducer.
type ProducerOption interface{ apply(*producerConfig) }

type producerConfig struct{ system string }

type producerOptionFunc func(*producerConfig)

func (f producerOptionFunc) apply(c *producerConfig) { f(c) }

// WithSystemName sets db.system.name on db.client.operation.duration,
// such as "mariadb" or "mysql": the driver go-sql-driver/mysql speaks to
// both, so the pools it opens have none unless given one. The pools of
// lib/pq and pgx have "postgresql", those of the SQLite drivers "sqlite".
// An empty name leaves the attribute out.
func WithSystemName(name string) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.system = name })
}

// systemName returns the semantic conventions' db.system.name of a
// tracker's SQL dialect ("" when the dialect does not tell it).
func systemName(dialect string) string {
	switch dialect {
	case "postgres":
		return "postgresql"
	case "sqlite":
		return "sqlite"
	}
	return "" // "mysql": MySQL or MariaDB
}

// operationName is db.operation.name by operation: the SQL command a
// transaction's begin, commit and rollback send. Exec, query and prepare
// run the application's SQL, whose command sqlwatch does not parse.
var operationName = [record.NumOps]string{
	record.OpBegin:    "BEGIN",
	record.OpCommit:   "COMMIT",
	record.OpRollback: "ROLLBACK",
}

// NewProducer returns the Producer of db, which must have been opened
// through sqlwatch (else [ErrNotWatched]), and turns the pool's hot-path
// recording on, as Register and metrics.Register do. Give it to one
// reader per pool:
//
//	p, err := otelmetrics.NewProducer(db)
//	...
//	reader := sdkmetric.NewPeriodicReader(exporter, sdkmetric.WithProducer(p))
//
// Every data point carries db.client.connection.pool.name, the pool's
// name (see driver.WithDBName).
func NewProducer(db *sql.DB, opts ...ProducerOption) (*Producer, error) {
	pl, err := poolOf(db)
	if err != nil {
		return nil, err
	}
	p := &Producer{rec: pl.Recorder(), t: pl.Tracker()}
	cfg := producerConfig{system: systemName(p.t.SQLDialect())}
	for _, o := range opts {
		o.apply(&cfg)
	}
	name := attribute.String("db.client.connection.pool.name", p.t.DBName())
	for op := range record.NumOps {
		kv := []attribute.KeyValue{name, attribute.String("sqlwatch.operation", record.Op(op).String())}
		if operationName[op] != "" {
			kv = append(kv, attribute.String("db.operation.name", operationName[op]))
		}
		if cfg.system != "" {
			kv = append(kv, attribute.String("db.system.name", cfg.system))
		}
		p.stmt[op] = attribute.NewSet(kv...)
	}
	for i, outcome := range record.TxOutcomes {
		p.tx[i] = attribute.NewSet(name, attribute.String("sqlwatch.tx.outcome", outcome))
	}
	p.hold = attribute.NewSet(name)

	p.wasOn = p.rec.Enabled()
	p.rec.SetEnabled(true)
	return p, nil
}

// Produce returns the pool's histograms as they are now, under the
// instrumentation scope [ScopeName]; after Close, nothing. It turns the
// pool's recording on again if another exporter's unregistering turned
// it off, as the Prometheus collector's Collect does.
func (p *Producer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil
	}
	p.rec.SetEnabled(true)
	p.mu.Unlock()

	now, start := time.Now(), p.rec.Since()
	point := func(attrs attribute.Set, h record.Histogram) metricdata.HistogramDataPoint[float64] {
		return metricdata.HistogramDataPoint[float64]{
			Attributes:   attrs,
			StartTime:    start,
			Time:         now,
			Count:        h.Count(),
			Bounds:       h.Bounds,
			BucketCounts: h.Counts,
			Sum:          h.Sum,
		}
	}
	stmt, tx := p.rec.Histograms(p.t)
	ops := make([]metricdata.HistogramDataPoint[float64], len(stmt))
	for op, h := range stmt {
		ops[op] = point(p.stmt[op], h)
	}
	txs := make([]metricdata.HistogramDataPoint[float64], len(tx))
	for i, h := range tx {
		txs[i] = point(p.tx[i], h)
	}
	hold := point(p.hold, record.HistogramOf(p.t.HoldHistogram()))

	hist := func(name, desc string, dps ...metricdata.HistogramDataPoint[float64]) metricdata.Metrics {
		return metricdata.Metrics{Name: name, Description: desc, Unit: "s",
			Data: metricdata.Histogram[float64]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality}}
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: ScopeName},
		Metrics: []metricdata.Metrics{
			hist("db.client.operation.duration", "Duration of database client operations, by driver operation (sqlwatch_statement_duration_seconds).", ops...),
			hist("db.client.connection.use_time", "The time between borrowing a connection and returning it to the pool (sqlwatch_conn_hold_seconds).", hold),
			hist("sqlwatch.tx.duration", "Duration of transactions from begin to commit or rollback, by outcome (sqlwatch_tx_duration_seconds).", txs...),
		},
	}}, nil
}

// Close stops p: Produce returns nothing from then on, and the pool's
// recording goes back off unless it was on at NewProducer (another
// exporter registered; one registered since turns it on again at its
// next collection). Closing twice is a no-op.
func (p *Producer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		if !p.wasOn {
			p.rec.SetEnabled(false)
		}
	}
	return nil
}
