// Package pgxwatch brings sqlwatch's watch to pgx's native pool
// (pgxpool): every acquired connection, transaction and result set is
// tracked with the same tracker as package driver's, and one left open past
// a threshold is reported with the application's own file and line, on the
// same logger, live page and test gate:
//
//	cfg, err := pgxpool.ParseConfig(dsn)
//	w, err := pgxwatch.Instrument(cfg, driver.WithThreshold(leak.KindTx, 30*time.Second))
//	pool, err := pgxpool.NewWithConfig(ctx, cfg)
//	defer w.Close() // after pool.Close
//
// It works through pgx's own hooks: the tracer of cfg.ConnConfig (query,
// batch, copy-from, prepare, connect, and pgxpool's acquire and release
// tracers), chained to any tracer already set. It takes package driver's
// options. Design, hook mapping and limits: docs/pgxwatch.md.
package pgxwatch

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/settings"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// Errors returned by [Instrument]; test with errors.Is. An invalid option
// returns an error wrapping driver.ErrInvalidOption.
var (
	ErrNilConfig    = errors.New("sqlwatch: nil *pgxpool.Config or ConnConfig")
	ErrInstrumented = errors.New("sqlwatch: *pgxpool.Config already instrumented")
)

// Watch is the watch over the pools made from one instrumented
// *pgxpool.Config. Its methods are safe for concurrent use.
type Watch struct {
	t   *track.Tracker
	rec *record.Recorder
}

// Instrument makes cfg's pools tracked: it sets cfg.ConnConfig.Tracer to a
// tracer that calls the one set before (every interface it implements,
// pgxpool's AcquireTracer and ReleaseTracer included) and then tracks, and
// starts the watchdog. Call it before pgxpool.NewWithConfig, once per
// config; a copy of cfg made after it (Config.Copy) shares the Watch.
// The options are package driver's; WithInterceptor, which only
// database/sql calls, is an error, and the misuse detectors' options do
// nothing. The pool's name (db_name) defaults to host:port/database.
func Instrument(cfg *pgxpool.Config, opts ...driver.Option) (*Watch, error) {
	if cfg == nil || cfg.ConnConfig == nil {
		return nil, ErrNilConfig
	}
	if _, ok := cfg.ConnConfig.Tracer.(*tracer); ok {
		return nil, ErrInstrumented
	}
	s, err := settings.Build(opts)
	if err != nil {
		return nil, err
	}
	if s.Interceptor {
		return nil, fmt.Errorf("%w: WithInterceptor applies to database/sql only", driver.ErrInvalidOption)
	}
	tc := s.TrackerConfig(nameOf(cfg), "postgres")
	t, err := track.NewTracker(tc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", driver.ErrInvalidOption, err)
	}
	w := &Watch{t: t, rec: record.NewRecorder(tc.DBName)}
	cfg.ConnConfig.Tracer = newTracer(w, cfg.ConnConfig.Tracer)
	return w, nil
}

// nameOf is the default db_name: host, port and database, never the user
// or password.
func nameOf(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return settings.PoolName(c.Host, strconv.Itoa(int(c.Port)), c.Database)
}

// Close stops the watchdog. Call it after pool.Close: a resource still
// open is no longer reported, though one reported already has its release
// line logged when it ends. Idempotent; it returns nil.
func (w *Watch) Close() error { return w.t.Stop() }

// Hijacked tells the watch that conn, taken out of a pool of the
// instrumented config with pgxpool.Conn.Hijack, has left the pool: its
// checkout ends, so a conn kept for good (a LISTEN loop, pgxlisten's
// Connect) is not reported as held. pgx gives no sign of a hijack; call
// it right after Hijack, on the same goroutine:
//
//	c, err := pool.Acquire(ctx)
//	...
//	conn := c.Hijack()
//	w.Hijacked(conn)
//
// The conn's later transactions and rows are still tracked. A conn that
// the watch does not know, one hijacked already, and one with a
// transaction or rows still open (whose checkout they hold) are ignored.
func (w *Watch) Hijacked(conn *pgx.Conn) {
	st := lookup(conn)
	if st == nil || st.res == nil || st.tx != nil || st.rows != nil {
		return
	}
	w.t.Close(st.res) // not a return to the pool: no hold time
	st.res = nil
}

// DBName returns the pool's name in reports and metrics.
func (w *Watch) DBName() string { return w.t.DBName() }

// Stats returns the counters of the watch, as leak.StatsOf does for a
// *sql.DB.
func (w *Watch) Stats() leak.Stats { return w.t.Stats() }

// Snapshot describes every resource open now, oldest first, as
// leak.Snapshot does. It symbolizes stacks: slow, not per statement.
func (w *Watch) Snapshot() []leak.Report { return w.t.Snapshot() }

// NewMonitor starts a pool-wait monitor on pool, a pool made from the
// instrumented config, as leak.NewMonitor does for a *sql.DB: it polls
// pool.Stat() (EmptyAcquireCount and EmptyAcquireWaitTime as the wait
// count and time, AcquiredConns against MaxConns) and its alerts name the
// holders and the goroutines waiting in pool.Acquire. Errors wrap
// leak.ErrNotWatched (nil pool) or leak.ErrInvalidConfig.
func (w *Watch) NewMonitor(pool *pgxpool.Pool, cfg leak.MonitorConfig) (*leak.Monitor, error) {
	if pool == nil {
		return nil, leak.ErrNotWatched
	}
	return track.NewPgxMonitor(w.t, fmt.Sprintf("%p", pool), track.MonitorConfig{
		Interval:  cfg.Interval,
		WaitLimit: cfg.WaitLimit,
		AlertGap:  cfg.AlertGap,
		Logger:    cfg.Logger,
		OnAlert:   cfg.OnAlert,
		Stats:     func() sql.DBStats { return dbStats(pool.Stat()) },
	})
}

// dbStats maps pgxpool's statistics onto database/sql's, as the monitor
// and the live page read them.
func dbStats(s *pgxpool.Stat) sql.DBStats {
	return sql.DBStats{
		MaxOpenConnections: int(s.MaxConns()),
		OpenConnections:    int(s.TotalConns()),
		InUse:              int(s.AcquiredConns()),
		Idle:               int(s.IdleConns()),
		WaitCount:          s.EmptyAcquireCount(),
		WaitDuration:       s.EmptyAcquireWaitTime(),
		MaxIdleClosed:      s.MaxIdleDestroyCount(),
		MaxLifetimeClosed:  s.MaxLifetimeDestroyCount(),
	}
}
