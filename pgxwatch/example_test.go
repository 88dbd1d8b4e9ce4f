package pgxwatch_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/pgxwatch"
)

// Instrument a pgxpool config before making the pool; register its
// metrics and start its pool-wait monitor once the pool exists.
func ExampleInstrument() {
	dsn := os.Getenv("SQLWATCH_POSTGRES_DSN")
	if dsn == "" {
		return
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		log.Fatal(err)
	}
	w, err := pgxwatch.Instrument(cfg, driver.WithThreshold(leak.KindTx, 30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close() // runs after pool.Close
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := w.Register(prometheus.NewRegistry(), pool); err != nil {
		log.Fatal(err)
	}
	mon, err := w.NewMonitor(pool, leak.MonitorConfig{WaitLimit: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer mon.Stop()

	tx, err := pool.Begin(ctx) // a tx open past 30s is reported with this line
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Output:
}
