package leak

import (
	"database/sql"
	"log/slog"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// MonitorConfig configures a [Monitor]. Zero fields take their defaults.
type MonitorConfig struct {
	// Interval between polls of DB.Stats. Default 1s.
	Interval time.Duration
	// WaitLimit is the mean wait above which an alert is raised, and how
	// long a goroutine may wait for a connection of a saturated pool, with
	// none returned meanwhile, before the pool counts as stalled. Default
	// 1s.
	WaitLimit time.Duration
	// AlertGap is the least time between two alerts of one pool; an
	// episode that starts sooner is not alerted. Default 1m.
	AlertGap time.Duration
	// Logger receives alerts and recoveries. Default: the pool's logger.
	Logger *slog.Logger
	// OnAlert, when set, receives every alert and recovery as a value.
	// A panic in it is recovered and counted. One that does not return
	// (nor a Logger) holds Stop for 2 seconds at most; what is still
	// running then is counted as dropped (Stats.Dropped).
	// A recovery is delivered only for an episode that was alerted.
	OnAlert func(PoolAlert)
}

// PoolAlert is a pool-wait alert (Reason "wait" or "stall", with the
// connections' Holders and the Waiters) or, when Recovered, its end
// (docs/pool-wait.md).
type PoolAlert = track.PoolAlert

// Monitor polls a pool's statistics and raises an alert when acquiring a
// connection takes too long or the pool stalls. Create it with
// [NewMonitor] (pgxwatch's Watch.NewMonitor for a pgxpool pool); Stop it
// before or with the pool. Its methods: Stop stops it and waits for it
// (idempotent); Check polls once, as the monitor does on its interval
// (concurrent calls run one after the other).
type Monitor = track.Monitor

// NewMonitor starts monitoring db; errors wrap ErrNotWatched or
// ErrInvalidConfig.
func NewMonitor(db *sql.DB, cfg MonitorConfig) (*Monitor, error) {
	return track.NewMonitor(db, track.MonitorConfig{
		Interval:  cfg.Interval,
		WaitLimit: cfg.WaitLimit,
		AlertGap:  cfg.AlertGap,
		Logger:    cfg.Logger,
		OnAlert:   cfg.OnAlert,
	})
}
