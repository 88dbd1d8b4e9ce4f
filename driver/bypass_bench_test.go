package driver_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
)

// BenchmarkStatementsAfterLeak: statements on the pool by a goroutine
// that leaked txs earlier (keep-alive handlers after a leak), against
// the same without a leak, and a genuine bypass repeated. None may
// queue a misuse: Stats().Dropped must stay 0.
func BenchmarkStatementsAfterLeak(b *testing.B) {
	ctx := context.Background()
	open := func(b *testing.B) *sql.DB {
		c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), quiet())
		if err != nil {
			b.Fatal(err)
		}
		db := sql.OpenDB(c)
		b.Cleanup(func() { db.Close() })
		return db
	}
	exec := func(b *testing.B, db *sql.DB) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.ExecContext(ctx, "UPDATE t"); err != nil {
				b.Fatal(err)
			}
		}
		if d := driver.TrackerOf(db).Stats().Dropped; d != 0 {
			b.Fatalf("dropped %d", d)
		}
	}
	b.Run("no-tx", func(b *testing.B) { exec(b, open(b)) })
	b.Run("leaked-tx", func(b *testing.B) {
		db := open(b)
		for _, tx := range leakBench(b, db, 4) {
			defer tx.Rollback()
		}
		exec(b, db)
	})
	b.Run("bypass", func(b *testing.B) {
		db := open(b)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback()
		exec(b, db)
	})
}

//go:noinline
func leakBench(b *testing.B, db *sql.DB, n int) []*sql.Tx {
	var out []*sql.Tx
	for range n {
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, tx)
	}
	return out
}
