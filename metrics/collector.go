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
	fam     *record.Family
	rec     *record.Recorder
	tracker *track.Tracker
	dbstats prometheus.Collector
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
	return &Collector{
		fam:     record.NewFamily(rec, t),
		rec:     rec,
		tracker: t,
		dbstats: collectors.NewDBStatsCollector(db, t.DBName()),
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

// Describe sends the descriptors of every metric, and turns the pool's
// hot-path recording on.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.fam.Describe(ch)
	if c.dbstats != nil {
		c.dbstats.Describe(ch)
	}
}

// Collect computes the gauges from the tracker at scrape time.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.fam.Collect(ch)
	if c.dbstats != nil {
		c.dbstats.Collect(ch)
	}
}
