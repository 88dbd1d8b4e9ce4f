// Package otelmetrics exports the metrics of a pool opened through
// sqlwatch through an OpenTelemetry meter, beside (or instead of) package
// metrics' Prometheus collector: the OpenTelemetry database semantic
// conventions' names where they define one (db.client.connection.count,
// db.client.connection.max), sqlwatch.* names for the rest.
//
// Two entry points, used alone or together, read what the pool's tracker
// and recorder keep already for the Prometheus collector, at collection
// time only; statements pay nothing more than with that collector (one
// atomic load while no exporter is registered, sqlwatch's own lock-free
// histograms once one is):
//
//   - [Register] observes the pool through a meter: every instrument is
//     asynchronous, and since the OpenTelemetry API has no asynchronous
//     histogram, each duration histogram is two counters there, the
//     total time and the count.
//   - [NewProducer] returns an SDK producer (sdkmetric.WithProducer) of
//     the duration histograms with their buckets, under the semantic
//     conventions' names db.client.operation.duration and
//     db.client.connection.use_time.
//
// See docs/opentelemetry.md.
//
// The package is a module of its own, so that the OpenTelemetry
// dependency stays out of the module graph of applications that do not
// import it.
package otelmetrics

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sqlwatch/sqlwatch/internal/errclass"
	"github.com/sqlwatch/sqlwatch/internal/poolstats"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// ScopeName is the instrumentation scope of the meter Register uses and
// of the metrics a Producer produces.
const ScopeName = "github.com/sqlwatch/sqlwatch/metrics/otelmetrics"

// Errors returned by Register and NewProducer, beside leak.ErrNotWatched for a *sql.DB
// not opened through sqlwatch; test with errors.Is.
var (
	ErrNotWatched       = leak.ErrNotWatched
	ErrNilMeterProvider = errors.New("sqlwatch: nil metric.MeterProvider")
)

// pool is what db.Driver() returns for a pool opened through sqlwatch.
type pool interface {
	Tracker() *track.Tracker
	Recorder() *record.Recorder
}

// Register observes db through a meter of mp (named ScopeName) and turns
// the pool's hot-path recording on, as metrics.Register does. Every
// observation carries db.client.connection.pool.name, the pool's name
// (see driver.WithDBName). The returned function unregisters the
// callback: mp's readers stop observing db. Register may be used with or
// without metrics.Register on the same pool; the two read the same
// values.
func Register(db *sql.DB, mp metric.MeterProvider) (unregister func() error, err error) {
	if mp == nil {
		return nil, ErrNilMeterProvider
	}
	p, err := poolOf(db)
	if err != nil {
		return nil, err
	}
	rec, t := p.Recorder(), p.Tracker()
	m := mp.Meter(ScopeName)
	in := new(instruments)
	if err := in.create(m); err != nil {
		return nil, err
	}
	o := &observer{db: db, rec: rec, t: t, in: in, pool: attribute.String("db.client.connection.pool.name", t.DBName())}
	reg, err := m.RegisterCallback(o.observe, in.all()...)
	if err != nil {
		return nil, err
	}
	wasOn := rec.Enabled()
	rec.SetEnabled(true)
	poolstats.Set(t, db.Stats) // the live page shows them
	var once sync.Once
	return func() error {
		err := errors.ErrUnsupported
		once.Do(func() {
			err = reg.Unregister()
			if !wasOn {
				// A Prometheus collector registered meanwhile turns it
				// on again at its next collection.
				rec.SetEnabled(false)
			}
		})
		if err == errors.ErrUnsupported {
			return nil // called twice
		}
		return err
	}, nil
}

type instruments struct {
	connCount, connMax                  metric.Int64ObservableUpDownCounter
	waits, closed                       metric.Int64ObservableCounter
	waitTime                            metric.Float64ObservableCounter
	txOpen, connOut                     metric.Int64ObservableUpDownCounter
	txOldest, connOldest                metric.Float64ObservableGauge
	leaks, misuse, deaths, errs, alerts metric.Int64ObservableCounter
	stmtN, txN, holdN                   metric.Int64ObservableCounter
	stmtTime, txTime, holdTime          metric.Float64ObservableCounter
}

func (in *instruments) create(m metric.Meter) error {
	var errs []error
	i64ud := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		x, err := m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	i64c := func(name, unit, desc string) metric.Int64ObservableCounter {
		x, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	f64c := func(name, desc string) metric.Float64ObservableCounter {
		x, err := m.Float64ObservableCounter(name, metric.WithUnit("s"), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	f64g := func(name, desc string) metric.Float64ObservableGauge {
		x, err := m.Float64ObservableGauge(name, metric.WithUnit("s"), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	// Semantic conventions (database metrics, connection pools).
	in.connCount = i64ud("db.client.connection.count", "{connection}", "The number of connections that are currently in state described by the state attribute.")
	in.connMax = i64ud("db.client.connection.max", "{connection}", "The maximum number of open connections allowed (0: unlimited).")
	// database/sql's DBStats without a semantic convention (go_sql_*).
	in.waits = i64c("sqlwatch.connection.waits", "{wait}", "Checkouts that waited for a connection (go_sql_wait_count_total).")
	in.waitTime = f64c("sqlwatch.connection.wait_time.total", "Total time checkouts waited for a connection (go_sql_wait_duration_seconds_total).")
	in.closed = i64c("sqlwatch.connection.closed", "{connection}", "Connections closed by the pool's limits, by reason: max_idle, max_idle_time, max_lifetime.")
	// sqlwatch's own.
	in.txOpen = i64ud("sqlwatch.tx.open", "{transaction}", "Transactions open now.")
	in.txOldest = f64g("sqlwatch.tx.oldest_age", "Age of the oldest open transaction; 0 when none is open.")
	in.connOut = i64ud("sqlwatch.conn.checked_out", "{connection}", "Connections checked out of the pool now.")
	in.connOldest = f64g("sqlwatch.conn.oldest_checkout", "Age of the oldest checkout; 0 when none.")
	in.leaks = i64c("sqlwatch.leaks", "{report}", "Leak reports logged, by kind of resource.")
	in.alerts = i64c("sqlwatch.pool_wait_alerts", "{alert}", "Pool-wait alerts raised (mean wait over the limit, or a stalled pool).")
	in.misuse = i64c("sqlwatch.misuse", "{occurrence}", "Misuse found by the detectors, by kind.")
	in.deaths = i64c("sqlwatch.conn.deaths", "{connection}", "Connections that died, by state: idle in the pool, held, or in a transaction.")
	in.errs = i64c("sqlwatch.errors", "{error}", "Errors returned by the driver, by operation and class.")
	// Histograms as count and total time.
	in.stmtN = i64c("sqlwatch.statements", "{operation}", "Driver operations completed, by operation (count of sqlwatch_statement_duration_seconds).")
	in.stmtTime = f64c("sqlwatch.statement.time", "Total duration of driver operations, by operation (sum of sqlwatch_statement_duration_seconds).")
	in.txN = i64c("sqlwatch.tx.ended", "{transaction}", "Transactions ended, by outcome (count of sqlwatch_tx_duration_seconds).")
	in.txTime = f64c("sqlwatch.tx.time", "Total duration of ended transactions, by outcome (sum of sqlwatch_tx_duration_seconds).")
	in.holdN = i64c("sqlwatch.conn.holds", "{checkout}", "Checkouts returned to the pool (count of sqlwatch_conn_hold_seconds).")
	in.holdTime = f64c("sqlwatch.conn.hold.time", "Total time connections stayed checked out (sum of sqlwatch_conn_hold_seconds).")
	return errors.Join(errs...)
}

func (in *instruments) all() []metric.Observable {
	return []metric.Observable{in.connCount, in.connMax, in.waits, in.waitTime, in.closed,
		in.txOpen, in.txOldest, in.connOut, in.connOldest, in.leaks, in.alerts, in.misuse, in.deaths, in.errs,
		in.stmtN, in.stmtTime, in.txN, in.txTime, in.holdN, in.holdTime}
}

type observer struct {
	db   *sql.DB
	rec  *record.Recorder
	t    *track.Tracker
	in   *instruments
	pool attribute.KeyValue
}

// observe runs at collection time only.
func (o *observer) observe(_ context.Context, ob metric.Observer) error {
	in, pool := o.in, o.pool
	attrs := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributes(append([]attribute.KeyValue{pool}, kv...)...)
	}
	only := attrs()

	ds := o.db.Stats()
	ob.ObserveInt64(in.connCount, int64(ds.Idle), attrs(attribute.String("db.client.connection.state", "idle")))
	ob.ObserveInt64(in.connCount, int64(ds.InUse), attrs(attribute.String("db.client.connection.state", "used")))
	ob.ObserveInt64(in.connMax, int64(ds.MaxOpenConnections), only)
	ob.ObserveInt64(in.waits, ds.WaitCount, only)
	ob.ObserveFloat64(in.waitTime, ds.WaitDuration.Seconds(), only)
	for _, c := range []struct {
		reason string
		n      int64
	}{{"max_idle", ds.MaxIdleClosed}, {"max_idle_time", ds.MaxIdleTimeClosed}, {"max_lifetime", ds.MaxLifetimeClosed}} {
		ob.ObserveInt64(in.closed, c.n, attrs(attribute.String("sqlwatch.close.reason", c.reason)))
	}

	txN, txAge := o.t.Oldest(track.KindTx)
	connN, connAge := o.t.Oldest(track.KindConn)
	ob.ObserveInt64(in.txOpen, int64(txN), only)
	ob.ObserveFloat64(in.txOldest, txAge.Seconds(), only)
	ob.ObserveInt64(in.connOut, int64(connN), only)
	ob.ObserveFloat64(in.connOldest, connAge.Seconds(), only)
	st := o.t.Stats()
	for _, k := range track.Kinds {
		ob.ObserveInt64(in.leaks, st.ReportedByKind[k], attrs(attribute.String("sqlwatch.leak.kind", k.String())))
	}
	ob.ObserveInt64(in.alerts, st.PoolAlerts, only)
	for _, k := range track.MisuseKinds {
		ob.ObserveInt64(in.misuse, st.Misuse[k], attrs(attribute.String("sqlwatch.misuse.kind", k)))
	}
	for _, s := range []string{leak.DeathIdle, leak.DeathHeld, leak.DeathInTx} {
		ob.ObserveInt64(in.deaths, st.ConnDeaths[s], attrs(attribute.String("sqlwatch.conn.state", s)))
	}

	tot := o.rec.Totals(o.t)
	for op := range record.NumOps {
		opAttr := attribute.String("sqlwatch.operation", record.Op(op).String())
		a := attrs(opAttr)
		ob.ObserveInt64(in.stmtN, int64(tot.Statements[op].Count), a)
		ob.ObserveFloat64(in.stmtTime, tot.Statements[op].Sum, a)
		for c := range errclass.NumClasses {
			ob.ObserveInt64(in.errs, int64(tot.Errors[op][c]),
				attrs(opAttr, attribute.String("sqlwatch.error.class", errclass.Class(c).String())))
		}
	}
	for i, outcome := range record.TxOutcomes {
		a := attrs(attribute.String("sqlwatch.tx.outcome", outcome))
		ob.ObserveInt64(in.txN, int64(tot.Tx[i].Count), a)
		ob.ObserveFloat64(in.txTime, tot.Tx[i].Sum, a)
	}
	_, counts, sum := o.t.HoldHistogram()
	hold := record.CountSumOf(counts, sum)
	ob.ObserveInt64(in.holdN, int64(hold.Count), only)
	ob.ObserveFloat64(in.holdTime, hold.Sum, only)
	return nil
}

// poolOf returns what db.Driver() is for a pool opened through sqlwatch,
// or ErrNotWatched.
func poolOf(db *sql.DB) (pool, error) {
	if db == nil {
		return nil, ErrNotWatched
	}
	p, ok := db.Driver().(pool)
	if !ok {
		return nil, ErrNotWatched
	}
	return p, nil
}
