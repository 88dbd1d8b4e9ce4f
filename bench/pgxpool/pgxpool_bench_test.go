// Package pgxpool_test measures what pgxwatch adds to pgx's native pool on
// a real PostgreSQL (SQLWATCH_POSTGRES_DSN; skipped when unset): each
// benchmark runs an uninstrumented pool ("raw") and an instrumented one
// with metrics registered ("pgxwatch") back to back, one pool each,
// serially, so that a run pairs them. See bench/README.md.
package pgxpool_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/pgxwatch"
)

func pool(b *testing.B, watched bool) *pgxpool.Pool {
	dsn := os.Getenv("SQLWATCH_POSTGRES_DSN")
	if dsn == "" {
		b.Skip("SQLWATCH_POSTGRES_DSN is not set")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 2
	var w *pgxwatch.Watch
	if watched {
		if w, err = pgxwatch.Instrument(cfg, driver.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
			b.Fatal(err)
		}
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		p.Close()
		if w != nil {
			w.Close()
		}
	})
	if w != nil {
		if err := w.Register(prometheus.NewRegistry(), p); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	return p
}

func variants(b *testing.B, op func(b *testing.B, p *pgxpool.Pool)) {
	for _, v := range []struct {
		name    string
		watched bool
	}{{"raw", false}, {"pgxwatch", true}} {
		b.Run(v.name, func(b *testing.B) {
			p := pool(b, v.watched)
			b.ReportAllocs()
			op(b, p)
		})
	}
}

func BenchmarkPgxQueryRow(b *testing.B) {
	variants(b, func(b *testing.B, p *pgxpool.Pool) {
		ctx := context.Background()
		var n int
		for b.Loop() {
			if err := p.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPgxExec(b *testing.B) {
	variants(b, func(b *testing.B, p *pgxpool.Pool) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := p.Exec(ctx, "SELECT 1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPgxBeginCommit(b *testing.B) {
	variants(b, func(b *testing.B, p *pgxpool.Pool) {
		ctx := context.Background()
		for b.Loop() {
			tx, err := p.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
