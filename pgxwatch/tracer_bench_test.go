package pgxwatch

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/driver"
)

// benchTracer returns an instrumented tracer, metrics registered, and a
// real conn to hand its hooks (SQLWATCH_POSTGRES_DSN; skipped when unset).
// The hooks are called directly, without a round trip: what they cost is
// what pgxwatch adds to each call on the pool.
func benchTracer(b *testing.B) (*tracer, *pgx.Conn) {
	dsn := os.Getenv("SQLWATCH_POSTGRES_DSN")
	if dsn == "" {
		b.Skip("SQLWATCH_POSTGRES_DSN is not set")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	w, err := Instrument(cfg, driver.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := w.Register(prometheus.NewRegistry(), pool); err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg.ConnConfig.Copy())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return cfg.ConnConfig.Tracer.(*tracer), conn
}

// BenchmarkHooksExec is what an acquired conn's Exec adds: the query
// tracer's start and end (the checkout noted and timed).
func BenchmarkHooksExec(b *testing.B) {
	tr, conn := benchTracer(b)
	ctx := context.Background()
	tr.TraceAcquireEnd(ctx, nil, pgxpool.TraceAcquireEndData{Conn: conn})
	defer tr.TraceRelease(nil, pgxpool.TraceReleaseData{Conn: conn})
	b.ReportAllocs()
	for b.Loop() {
		ctx := tr.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: "SELECT 1"})
		tr.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{})
	}
}

// BenchmarkHooksAcquireRelease is what a checkout adds: the acquire and
// release tracers (stack capture, the tracker's open and close, the hold
// time recorded).
func BenchmarkHooksAcquireRelease(b *testing.B) {
	tr, conn := benchTracer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ctx := tr.TraceAcquireStart(ctx, nil, pgxpool.TraceAcquireStartData{})
		tr.TraceAcquireEnd(ctx, nil, pgxpool.TraceAcquireEndData{Conn: conn})
		tr.TraceRelease(nil, pgxpool.TraceReleaseData{Conn: conn})
	}
}
