// Package metrics exports Prometheus metrics for pools opened through
// sqlwatch, next to client_golang's go_sql_* pool statistics, every series
// with the pool's db_name label (README "Metrics and alerts"):
//
//	if err := metrics.Register(prometheus.DefaultRegisterer, db); err != nil { ... }
//
// Until a pool's collector is registered, the driver records nothing for it.
package metrics

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sqlwatch/sqlwatch/internal/poolstats"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// Errors returned by [New] and [Register], beside leak.ErrNotWatched for
// a *sql.DB not opened through sqlwatch; test with errors.Is.
var (
	ErrNilRegisterer     = errors.New("sqlwatch: nil prometheus.Registerer")
	ErrAlreadyRegistered = errors.New("sqlwatch: metrics already registered")
)

// pool is what db.Driver() returns for a pool opened through sqlwatch.
type pool interface {
	Tracker() *track.Tracker
	Recorder() *record.Recorder
}

// Collector is a prometheus.Collector for one pool: sqlwatch's own
// metrics plus client_golang's DBStats collector (go_sql_*), all with the
// pool's db_name label.
type Collector struct {
	rec     *record.Recorder
	tracker *track.Tracker
	dbstats prometheus.Collector

	txOpen, txOldest, connOut, connOldest, leaks, poolAlerts, misuse, deaths, connHold *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns the Collector of db, which must have been opened through
// sqlwatch. It records nothing until a registry calls its Describe.
func New(db *sql.DB) (*Collector, error) {
	if db == nil {
		return nil, leak.ErrNotWatched
	}
	p, ok := db.Driver().(pool)
	if !ok {
		return nil, leak.ErrNotWatched
	}
	rec, t := p.Recorder(), p.Tracker()
	labels := prometheus.Labels{"db_name": t.DBName()}
	desc := func(name, help string, varLabels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, varLabels, labels)
	}
	return &Collector{
		rec:        rec,
		tracker:    t,
		dbstats:    collectors.NewDBStatsCollector(db, t.DBName()),
		txOpen:     desc("sqlwatch_tx_open", "Transactions open now."),
		txOldest:   desc("sqlwatch_tx_oldest_age_seconds", "Age of the oldest open transaction; 0 when none is open."),
		connOut:    desc("sqlwatch_conn_checked_out", "Connections checked out of the pool now."),
		connOldest: desc("sqlwatch_conn_oldest_checkout_seconds", "Age of the oldest checkout; 0 when none."),
		leaks:      desc("sqlwatch_leaks_total", "Leak reports logged, by kind of resource.", "kind"),
		poolAlerts: desc("sqlwatch_pool_wait_alerts_total", "Pool-wait alerts raised (mean wait over the limit, or a stalled pool)."),
		misuse:     desc("sqlwatch_misuse_total", "Misuse found by the detectors, by kind.", "kind"),
		deaths:     desc("sqlwatch_conn_deaths_total", "Connections that died, by state: idle in the pool, held, or in a transaction.", "state"),
		connHold:   desc("sqlwatch_conn_hold_seconds", "How long connections stayed checked out of the pool."),
	}, nil
}

// Register registers the Collector of db with reg; one pool twice, or two
// pools with one db_name, is an error wrapping [ErrAlreadyRegistered]. A
// DBStats collector of the pool already in reg keeps go_sql_* (README).
func Register(reg prometheus.Registerer, db *sql.DB) error {
	if reg == nil {
		return ErrNilRegisterer
	}
	c, err := New(db)
	if err != nil {
		return err
	}
	// The registry calls Describe, which turns recording on, before it
	// refuses: a refusal turns it back off unless it was on already (the
	// pool registered elsewhere). A collector registered by other means
	// meanwhile turns it on again at its next Describe or Collect.
	wasOn := c.rec.Enabled()
	err = reg.Register(c)
	if err != nil && ownDBStats(reg, db, c.tracker.DBName()) {
		// The application registered collectors.NewDBStatsCollector for
		// this pool under its db_name: it exports go_sql_* already.
		c.dbstats = nil
		err = reg.Register(c)
	}
	if err != nil {
		if !wasOn {
			c.rec.SetEnabled(false)
		}
		return fmt.Errorf("%w: db_name %q on this registry (name pools apart with driver.WithDBName): %v",
			ErrAlreadyRegistered, c.tracker.DBName(), err)
	}
	poolstats.Set(c.tracker, db.Stats) // the live page shows them
	return nil
}

// ownDBStats reports whether reg holds a collector equal to
// collectors.NewDBStatsCollector(db, dbName) registered by someone else:
// registering one more is refused with an AlreadyRegisteredError. (A
// registry answers a collector that only overlaps another one, such as
// sqlwatch's own Collector of the pool, with a different error.)
func ownDBStats(reg prometheus.Registerer, db *sql.DB, dbName string) bool {
	probe := collectors.NewDBStatsCollector(db, dbName)
	err := reg.Register(probe)
	if err == nil {
		reg.Unregister(probe)
		return false
	}
	var are prometheus.AlreadyRegisteredError
	return errors.As(err, &are)
}

// holdMetric is sqlwatch_conn_hold_seconds, from the histogram the
// tracker keeps under its own locks (see track.Tracker.CloseHeld).
func (c *Collector) holdMetric() prometheus.Metric {
	bounds, counts, sum := c.tracker.HoldHistogram()
	upper := make([]float64, len(bounds))
	for i, b := range bounds {
		upper[i] = b.Seconds()
	}
	return record.ConstHistogram(c.connHold, upper, counts, sum)
}

// Describe sends the descriptors of every metric, and turns the pool's
// hot-path recording on.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.rec.SetEnabled(true)
	c.rec.Describe(ch)
	for _, d := range []*prometheus.Desc{c.txOpen, c.txOldest, c.connOut, c.connOldest, c.leaks, c.poolAlerts, c.misuse, c.deaths, c.connHold} {
		ch <- d
	}
	if c.dbstats != nil {
		c.dbstats.Describe(ch)
	}
}

// Collect computes the gauges from the tracker at scrape time.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.rec.SetEnabled(true)
	c.rec.Collect(ch, c.tracker)
	ch <- c.holdMetric()

	txN, txAge := c.tracker.Oldest(track.KindTx)
	connN, connAge := c.tracker.Oldest(track.KindConn)
	ch <- prometheus.MustNewConstMetric(c.txOpen, prometheus.GaugeValue, float64(txN))
	ch <- prometheus.MustNewConstMetric(c.txOldest, prometheus.GaugeValue, txAge.Seconds())
	ch <- prometheus.MustNewConstMetric(c.connOut, prometheus.GaugeValue, float64(connN))
	ch <- prometheus.MustNewConstMetric(c.connOldest, prometheus.GaugeValue, connAge.Seconds())
	st := c.tracker.Stats()
	for _, k := range track.Kinds {
		ch <- prometheus.MustNewConstMetric(c.leaks, prometheus.CounterValue, float64(st.ReportedByKind[k]), k.String())
	}
	ch <- prometheus.MustNewConstMetric(c.poolAlerts, prometheus.CounterValue, float64(st.PoolAlerts))
	for _, k := range track.MisuseKinds {
		ch <- prometheus.MustNewConstMetric(c.misuse, prometheus.CounterValue, float64(st.Misuse[k]), k)
	}
	for _, s := range []string{leak.DeathIdle, leak.DeathHeld, leak.DeathInTx} {
		ch <- prometheus.MustNewConstMetric(c.deaths, prometheus.CounterValue, float64(st.ConnDeaths[s]), s)
	}
	if c.dbstats != nil {
		c.dbstats.Collect(ch)
	}
}
