package pgxwatch

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/internal/poolstats"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
)

// Register registers with reg the metrics of pool, a pool made from the
// instrumented config: sqlwatch's own family (sqlwatch_*, as
// metrics.Register exports for a *sql.DB) and pgxpool's statistics
// (pgxpool_*, from pool.Stat() at scrape time), every series with the
// pool's db_name label. Until it is registered the tracer times nothing.
// A second registration on one registry, or another pool with the same
// db_name, is an error wrapping metrics.ErrAlreadyRegistered; a nil reg
// is metrics.ErrNilRegisterer, a nil pool leak.ErrNotWatched.
func (w *Watch) Register(reg prometheus.Registerer, pool *pgxpool.Pool) error {
	if reg == nil {
		return metrics.ErrNilRegisterer
	}
	if pool == nil {
		return leak.ErrNotWatched
	}
	c := newCollector(w, pool)
	wasOn := w.rec.Enabled()
	if err := reg.Register(c); err != nil {
		if !wasOn {
			w.rec.SetEnabled(false)
		}
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			err = are
		}
		return fmt.Errorf("%w: db_name %q on this registry (name pools apart with driver.WithDBName): %v",
			metrics.ErrAlreadyRegistered, w.t.DBName(), err)
	}
	poolstats.Set(w.t, func() sql.DBStats { return dbStats(pool.Stat()) }) // the live page shows them
	return nil
}

// collector is sqlwatch's family plus pgxpool's statistics.
type collector struct {
	fam  *record.Family
	pool *pgxpool.Pool

	acquires, acquireSeconds, emptyAcquires, emptyWaitSeconds, canceled, newConns, lifetimeDestroys, idleDestroys *prometheus.Desc
	acquired, idle, constructing, total, maxConns                                                                 *prometheus.Desc
}

func newCollector(w *Watch, pool *pgxpool.Pool) *collector {
	labels := prometheus.Labels{"db_name": w.t.DBName()}
	desc := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, labels) }
	return &collector{
		fam:              record.NewFamily(w.rec, w.t),
		pool:             pool,
		acquires:         desc("pgxpool_acquires_total", "Successful acquires from the pool."),
		acquireSeconds:   desc("pgxpool_acquire_seconds_total", "Time spent in successful acquires."),
		emptyAcquires:    desc("pgxpool_empty_acquires_total", "Successful acquires that waited for a connection to be released or built."),
		emptyWaitSeconds: desc("pgxpool_empty_acquire_wait_seconds_total", "Time spent waiting in acquires that found the pool empty."),
		canceled:         desc("pgxpool_canceled_acquires_total", "Acquires canceled by their context."),
		newConns:         desc("pgxpool_new_conns_total", "Connections opened."),
		lifetimeDestroys: desc("pgxpool_max_lifetime_destroys_total", "Connections closed for exceeding MaxConnLifetime."),
		idleDestroys:     desc("pgxpool_max_idle_destroys_total", "Connections closed for exceeding MaxConnIdleTime."),
		acquired:         desc("pgxpool_conns_acquired", "Connections acquired now."),
		idle:             desc("pgxpool_conns_idle", "Idle connections now."),
		constructing:     desc("pgxpool_conns_constructing", "Connections being built now."),
		total:            desc("pgxpool_conns", "Connections open now: acquired, idle and being built."),
		maxConns:         desc("pgxpool_conns_max", "The pool's MaxConns."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.fam.Describe(ch)
	for _, d := range []*prometheus.Desc{c.acquires, c.acquireSeconds, c.emptyAcquires, c.emptyWaitSeconds, c.canceled,
		c.newConns, c.lifetimeDestroys, c.idleDestroys, c.acquired, c.idle, c.constructing, c.total, c.maxConns} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.fam.Collect(ch)
	s := c.pool.Stat()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.emptyWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceled, float64(s.CanceledAcquireCount()))
	counter(c.newConns, float64(s.NewConnsCount()))
	counter(c.lifetimeDestroys, float64(s.MaxLifetimeDestroyCount()))
	counter(c.idleDestroys, float64(s.MaxIdleDestroyCount()))
	gauge(c.acquired, float64(s.AcquiredConns()))
	gauge(c.idle, float64(s.IdleConns()))
	gauge(c.constructing, float64(s.ConstructingConns()))
	gauge(c.total, float64(s.TotalConns()))
	gauge(c.maxConns, float64(s.MaxConns()))
}
