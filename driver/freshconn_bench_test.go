package driver_test

import (
	"context"
	"database/sql"
	"testing"
)

// BenchmarkFreshConn: a DB.Conn and Close on a pool that keeps no idle
// conn, so that every iteration opens a brand-new conn (Connect) and
// closes it: the cost of finding database/sql's caller in Connect.
func BenchmarkFreshConn(b *testing.B) {
	runBench(b, func(ctx context.Context, db *sql.DB) error {
		db.SetMaxIdleConns(-1)
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
