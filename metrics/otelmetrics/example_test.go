package otelmetrics_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"go.opentelemetry.io/otel/attribute"
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

// A producer gives a reader the pool's duration histograms, with their
// buckets, at collection time; here a manual reader, in an application
// the periodic reader of its exporter (OTLP, Prometheus...).
func ExampleNewProducer() {
	if err := driver.RegisterByName("sqlite+watch-otel-producer", "sqlite", driver.WithDBName("shop")); err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "otelmetrics")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite+watch-otel-producer", filepath.Join(dir, "shop.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	p, err := otelmetrics.NewProducer(db)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	tx, _ := db.Begin()
	tx.Commit()

	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				if dp.Count > 0 {
					fmt.Printf("%s (%s) %v: count %d, %d buckets\n", m.Name, m.Unit, dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Count, len(dp.BucketCounts))
				}
			}
		}
	}
	// Output:
	// db.client.operation.duration (s) db.client.connection.pool.name=shop,db.operation.name=BEGIN,db.system.name=sqlite,sqlwatch.operation=begin: count 1, 17 buckets
	// db.client.operation.duration (s) db.client.connection.pool.name=shop,db.operation.name=COMMIT,db.system.name=sqlite,sqlwatch.operation=commit: count 1, 17 buckets
	// db.client.connection.use_time (s) db.client.connection.pool.name=shop: count 1, 15 buckets
	// sqlwatch.tx.duration (s) db.client.connection.pool.name=shop,sqlwatch.tx.outcome=commit: count 1, 15 buckets
}
