package otelmetrics_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	_ "modernc.org/sqlite"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/metrics/otelmetrics"
)

// Register a pool with a meter provider; here one with a manual reader,
// in an application the provider its exporter (OTLP, Prometheus...) reads.
func ExampleRegister() {
	if err := driver.RegisterByName("sqlite+watch-otel-example", "sqlite", driver.WithDBName("shop")); err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "otelmetrics")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite+watch-otel-example", filepath.Join(dir, "shop.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	unregister, err := otelmetrics.Register(db, mp)
	if err != nil {
		panic(err)
	}
	defer unregister()

	tx, _ := db.Begin()
	defer tx.Rollback()

	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case "sqlwatch.tx.open", "db.client.connection.max":
				p := m.Data.(metricdata.Sum[int64]).DataPoints[0]
				pool, _ := p.Attributes.Value("db.client.connection.pool.name")
				fmt.Printf("%s{pool=%s} %d\n", m.Name, pool.AsString(), p.Value)
			}
		}
	}
	// Unordered output:
	// db.client.connection.max{pool=shop} 0
	// sqlwatch.tx.open{pool=shop} 1
}
