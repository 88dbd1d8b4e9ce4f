package integration

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// TestSqlxPostgres: sqlx picks its placeholders by driver name, and knows
// nothing of a name registered with sqlwatch: it keeps "?", which
// PostgreSQL rejects (42601). The two ways out, on real PostgreSQL through
// lib/pq and through pgx: sqlx.NewDb with the wrapped driver's own name,
// or sqlx.BindDriver for the registered name.
func TestSqlxPostgres(t *testing.T) {
	for _, inner := range []string{"postgres", "pgx"} {
		t.Run(inner, func(t *testing.T) {
			d := dsn(t, postgresEnv)
			watched := name(inner + "+watch")
			if err := driver.RegisterByName(watched, inner); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			const q = "SELECT count(*) FROM pg_class WHERE relname = ? OR relname = ?"

			// The trap: sqlx.Connect(watched, ...) binds with "?".
			bad, err := sqlx.Connect(watched, d)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			if got := bad.Rebind(q); got != q {
				t.Errorf("sqlx under an unknown name rebound %q to %q; want it unchanged (the trap)", q, got)
			}
			var n int
			err = bad.GetContext(ctx, &n, bad.Rebind(q), "pg_class", "pg_type")
			var pqErr *pq.Error
			if err == nil {
				t.Errorf("\"?\" placeholders ran on PostgreSQL; want a syntax error")
			} else if inner == "postgres" && (!errors.As(err, &pqErr) || pqErr.Code != "42601") {
				t.Errorf("error %v; want SQLSTATE 42601", err)
			}

			// Way 1: sqlx.NewDb with the wrapped driver's name.
			db, err := sql.Open(watched, d)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			x := sqlx.NewDb(db, "postgres")
			if err := x.GetContext(ctx, &n, x.Rebind(q), "pg_class", "pg_type"); err != nil || n != 2 {
				t.Errorf("NewDb(db, \"postgres\"): %d, %v; want 2, nil", n, err)
			}
			if x.DriverName() != "postgres" {
				t.Errorf("DriverName() %q; want postgres", x.DriverName())
			}
			if _, err := leak.StatsOf(x.DB); err != nil {
				t.Errorf("the sqlx DB's pool is not tracked: %v", err)
			}

			// Way 2: sqlx.BindDriver for the registered name, then sqlx.Connect.
			sqlx.BindDriver(watched, sqlx.DOLLAR)
			y, err := sqlx.Connect(watched, d)
			if err != nil {
				t.Fatal(err)
			}
			defer y.Close()
			if err := y.GetContext(ctx, &n, y.Rebind(q), "pg_class", "pg_type"); err != nil || n != 2 {
				t.Errorf("BindDriver: %d, %v; want 2, nil", n, err)
			}
			// Named queries bind by the same type.
			rows, err := y.NamedQueryContext(ctx, "SELECT count(*) FROM pg_class WHERE relname = :a", map[string]any{"a": "pg_class"})
			if err != nil {
				t.Fatalf("NamedQuery: %v", err)
			}
			rows.Close()
		})
	}
}

// TestSqlxMySQL: on MySQL sqlx's default ("?") happens to be right, but
// code that compares DriverName() takes the wrong branch: NewDb with
// "mysql".
func TestSqlxMySQL(t *testing.T) {
	d := dsn(t, mysqlEnv)
	watched := name("mysql+watch")
	if err := driver.RegisterByName(watched, "mysql"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(watched, d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	x := sqlx.NewDb(db, "mysql")
	var n int
	if err := x.Get(&n, x.Rebind("SELECT ? + ?"), 1, 2); err != nil || n != 3 {
		t.Errorf("got %d, %v; want 3, nil", n, err)
	}
	if x.DriverName() != "mysql" {
		t.Errorf("DriverName() %q; want mysql", x.DriverName())
	}
}
