package record

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Family collects sqlwatch's own metric family (sqlwatch_*) of one pool:
// the recorder's histograms and counters and the gauges and counters read
// from its tracker at scrape time, with the pool's db_name label. Package
// metrics adds database/sql's go_sql_* to it, package pgxwatch pgxpool's
// statistics.
type Family struct {
	rec     *Recorder
	tracker *track.Tracker

	txOpen, txOldest, connOut, connOldest, leaks, poolAlerts, misuse, deaths, connHold *prometheus.Desc
}

// NewFamily returns the Family of the pool whose recorder and tracker
// are rec and t.
func NewFamily(rec *Recorder, t *track.Tracker) *Family {
	labels := prometheus.Labels{"db_name": t.DBName()}
	desc := func(name, help string, varLabels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, varLabels, labels)
	}
	return &Family{
		rec:        rec,
		tracker:    t,
		txOpen:     desc("sqlwatch_tx_open", "Transactions open now."),
		txOldest:   desc("sqlwatch_tx_oldest_age_seconds", "Age of the oldest open transaction; 0 when none is open."),
		connOut:    desc("sqlwatch_conn_checked_out", "Connections checked out of the pool now."),
		connOldest: desc("sqlwatch_conn_oldest_checkout_seconds", "Age of the oldest checkout; 0 when none."),
		leaks:      desc("sqlwatch_leaks_total", "Leak reports logged, by kind of resource.", "kind"),
		poolAlerts: desc("sqlwatch_pool_wait_alerts_total", "Pool-wait alerts raised (mean wait over the limit, or a stalled pool)."),
		misuse:     desc("sqlwatch_misuse_total", "Misuse found by the detectors, by kind.", "kind"),
		deaths:     desc("sqlwatch_conn_deaths_total", "Connections that died, by state: idle in the pool, held, or in a transaction.", "state"),
		connHold:   desc("sqlwatch_conn_hold_seconds", "How long connections stayed checked out of the pool."),
	}
}

// Recorder returns the family's recorder.
func (f *Family) Recorder() *Recorder { return f.rec }

// Tracker returns the family's tracker.
func (f *Family) Tracker() *track.Tracker { return f.tracker }

// holdMetric is sqlwatch_conn_hold_seconds, from the histogram the
// tracker keeps under its own locks (see track.Tracker.CloseHeld).
func (f *Family) holdMetric() prometheus.Metric {
	h := HistogramOf(f.tracker.HoldHistogram())
	return ConstHistogram(f.connHold, h.Bounds, h.Counts, h.Sum)
}

// Describe sends the descriptors of every metric of the family, and
// turns the pool's hot-path recording on.
func (f *Family) Describe(ch chan<- *prometheus.Desc) {
	f.rec.SetEnabled(true)
	f.rec.Describe(ch)
	for _, d := range []*prometheus.Desc{f.txOpen, f.txOldest, f.connOut, f.connOldest, f.leaks, f.poolAlerts, f.misuse, f.deaths, f.connHold} {
		ch <- d
	}
}

// Collect computes the family's metrics; the gauges from the tracker at
// scrape time.
func (f *Family) Collect(ch chan<- prometheus.Metric) {
	f.rec.SetEnabled(true)
	f.rec.Collect(ch, f.tracker)
	ch <- f.holdMetric()

	txN, txAge := f.tracker.Oldest(track.KindTx)
	connN, connAge := f.tracker.Oldest(track.KindConn)
	ch <- prometheus.MustNewConstMetric(f.txOpen, prometheus.GaugeValue, float64(txN))
	ch <- prometheus.MustNewConstMetric(f.txOldest, prometheus.GaugeValue, txAge.Seconds())
	ch <- prometheus.MustNewConstMetric(f.connOut, prometheus.GaugeValue, float64(connN))
	ch <- prometheus.MustNewConstMetric(f.connOldest, prometheus.GaugeValue, connAge.Seconds())
	st := f.tracker.Stats()
	for _, k := range track.Kinds {
		ch <- prometheus.MustNewConstMetric(f.leaks, prometheus.CounterValue, float64(st.ReportedByKind[k]), k.String())
	}
	ch <- prometheus.MustNewConstMetric(f.poolAlerts, prometheus.CounterValue, float64(st.PoolAlerts))
	for _, k := range track.MisuseKinds {
		ch <- prometheus.MustNewConstMetric(f.misuse, prometheus.CounterValue, float64(st.Misuse[k]), k)
	}
	for _, s := range []string{track.DeathIdle, track.DeathHeld, track.DeathInTx} {
		ch <- prometheus.MustNewConstMetric(f.deaths, prometheus.CounterValue, float64(st.ConnDeaths[s]), s)
	}
}
