package driver_test

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"testing"

	"github.com/ngrok/sqlmw"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
)

// The wrapper's own cost over the in-memory fake driver: raw, sqlmw with
// an empty interceptor, sqlwatch, and sqlwatch with WithContextAttrs
// under a context that carries a request id (sqlwatch_ctx).

func benchDBs(b *testing.B) map[string]*sql.DB {
	b.Helper()
	raw := fakedb.New(fakedb.Full).OpenDB()
	mw := sql.OpenDB(sqlmwConnector{fakedb.New(fakedb.Full)})
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), quiet())
	if err != nil {
		b.Fatal(err)
	}
	watched := sql.OpenDB(c)
	c, err = driver.NewConnector(fakedb.New(fakedb.Full).Connector(), quiet(), driver.WithContextAttrs(requestAttrs))
	if err != nil {
		b.Fatal(err)
	}
	dbs := map[string]*sql.DB{"raw": raw, "sqlmw": mw, "sqlwatch": watched, "sqlwatch_ctx": sql.OpenDB(c)}
	b.Cleanup(func() {
		for _, db := range dbs {
			db.Close()
		}
	})
	return dbs
}

// sqlmwConnector opens sqlmw-wrapped conns of a fake driver.
type sqlmwConnector struct{ fd *fakedb.Driver }

func (c sqlmwConnector) Connect(ctx context.Context) (sqldriver.Conn, error) {
	return c.Driver().Open("")
}
func (c sqlmwConnector) Driver() sqldriver.Driver {
	return sqlmw.Driver(c.fd.Driver(), sqlmw.NullInterceptor{})
}

func runBench(b *testing.B, op func(ctx context.Context, db *sql.DB) error) {
	for _, name := range []string{"raw", "sqlmw", "sqlwatch", "sqlwatch_ctx"} {
		b.Run(name, func(b *testing.B) {
			db := benchDBs(b)[name]
			ctx := context.Background()
			if name == "sqlwatch_ctx" {
				ctx = context.WithValue(ctx, requestIDKey{}, "req-bench")
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := op(ctx, db); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkExec(b *testing.B) {
	runBench(b, func(ctx context.Context, db *sql.DB) error { _, err := db.ExecContext(ctx, "INSERT x", 1); return err })
}

func BenchmarkQueryNextClose(b *testing.B) {
	runBench(b, func(ctx context.Context, db *sql.DB) error {
		rows, err := db.QueryContext(ctx, "SELECT ROWS 1")
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		return rows.Close()
	})
}

func BenchmarkBeginExecCommit(b *testing.B) {
	runBench(b, func(ctx context.Context, db *sql.DB) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE x", 1); err != nil {
			return err
		}
		return tx.Commit()
	})
}
