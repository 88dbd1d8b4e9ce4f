package integration

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/XSAM/otelsql"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	uptraceotelsql "github.com/uptrace/opentelemetry-go-extra/otelsql"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// TestOtelsqlOutside: XSAM/otelsql wrapping sqlwatch's driver
// (otelsql.Open over the registered name), on MariaDB. otelsql's conn
// sits between database/sql and sqlwatch; a leaked tx still names this
// file, the pool keeps the name its DSN gives and the MySQL dialect, and
// Unwrap reaches go-sql-driver's conn through otelsql's Raw. StatsOf
// does not see through otelsql's *sql.DB: the live page does.
func TestOtelsqlOutside(t *testing.T) {
	d := dsn(t, mysqlEnv)
	s := newSink()
	watched := name("mysql+watch")
	if err := driver.RegisterByName(watched, "mysql", s.opts(driver.WithRedactedSQL())...); err != nil {
		t.Fatal(err)
	}
	db, err := otelsql.Open(watched, d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	line := here(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT 'it\\'s secret', 4242"); err != nil {
		t.Fatal(err)
	}
	r := s.leak(t, leak.KindTx)
	sameLine(t, "tx under otelsql", r.Origin, line)
	if want := "SELECT ?, ?"; r.LastQuery != want {
		t.Errorf("last query %q; want %q (MySQL dialect)", r.LastQuery, want)
	}
	if _, err := leak.StatsOf(db); !errors.Is(err, leak.ErrNotWatched) {
		t.Errorf("StatsOf on otelsql's *sql.DB: %v; want ErrNotWatched (the docs say it does not see through)", err)
	}
	page := httptest.NewRecorder()
	leak.Handler().ServeHTTP(page, httptest.NewRequest("GET", "/?format=json", nil))
	var listed struct {
		Pools []struct {
			DBName string `json:"db_name"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(page.Body.Bytes(), &listed); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(listed.Pools, func(p struct {
		DBName string `json:"db_name"`
	}) bool {
		return p.DBName == r.DBName
	}) {
		t.Errorf("the live page has no pool %q: %+v", r.DBName, listed.Pools)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		inner := driver.Unwrap(dc)
		//lint:ignore SA1019 go-sql-driver's multi-result API is on the legacy interface
		if _, ok := inner.(sqldriver.Execer); !ok || inner == dc {
			t.Errorf("Unwrap through otelsql gave %T; want go-sql-driver's conn", inner)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOtelsqlInside: sqlwatch wrapping otelsql's driver
// (driver.Register over otelsql.WrapDriver). otelsql's frames are below
// sqlwatch's and never in a stack; StatsOf works. sqlwatch no longer
// sees the driver's package: name the pool with WithDBName (else it is
// the registered name) and redaction reads the generic dialect.
func TestOtelsqlInside(t *testing.T) {
	d := dsn(t, mysqlEnv)
	s := newSink()
	watched := name("mysql+otel+watch")
	if err := driver.Register(watched, otelsql.WrapDriver(&mysql.MySQLDriver{}), s.opts(driver.WithDBName("shop"))...); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(watched, d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	line := here(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	r := s.leak(t, leak.KindTx)
	sameLine(t, "tx over otelsql", r.Origin, line)
	if st, err := leak.StatsOf(db); err != nil || st.DBName != "shop" {
		t.Errorf("StatsOf: %q, %v; want the pool named shop", st.DBName, err)
	}
}

// TestPgxGetConnector: pgx's stdlib.GetConnector wrapped with
// NewConnector for sql.OpenDB (stdlib.OpenDB returns a *sql.DB, which
// cannot be wrapped). The pool is tracked and a leaked tx names this
// file. A connector hides its DSN: without WithDBName the pool is named
// after the driver's package ("stdlib").
func TestPgxGetConnector(t *testing.T) {
	d := dsn(t, postgresEnv)
	s := newSink()
	cfg, err := pgx.ParseConfig(d)
	if err != nil {
		t.Fatal(err)
	}
	c, err := driver.NewConnector(stdlib.GetConnector(*cfg), s.opts(driver.WithDBName("orders"))...)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if st, err := leak.StatsOf(db); err != nil || st.DBName != "orders" {
		t.Fatalf("StatsOf: %q, %v; want the pool named orders", st.DBName, err)
	}
	ctx := context.Background()
	line := here(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	sameLine(t, "pgx tx", s.leak(t, leak.KindTx).Origin, line)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Raw(func(dc any) error {
		if _, ok := driver.Unwrap(dc).(*stdlib.Conn); !ok {
			t.Errorf("Unwrap gave %T; want *stdlib.Conn", driver.Unwrap(dc))
		}
		return nil
	})
}

// TestOtelsqlUptraceOutside: uptrace's otelsql
// (github.com/uptrace/opentelemetry-go-extra/otelsql) wrapping sqlwatch's
// driver, on MariaDB. Its conn runs the inner BeginTx in a closure under
// its span helper; a leaked tx names this file. But its conn has no
// IsValid (driver.Validator), the only sign sqlwatch has of a conn going
// back to the pool: in this order sqlwatch cannot tell a conn idle in the
// pool from one checked out, so conn checkouts are not reported (a
// committed tx leaves no report although its conn idles past the conn
// threshold) and the pool's log says why once. Hence
// docs/integrations.md: sqlwatch outermost with this wrapper.
func TestOtelsqlUptraceOutside(t *testing.T) {
	d := dsn(t, mysqlEnv)
	s := newSink()
	watched, rec := watchRecorded(t, "mysql", s)
	db, err := uptraceotelsql.Open(watched, d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	ok, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.Commit(); err != nil {
		t.Fatal(err)
	}
	s.quiet(t, "a conn idle after a committed tx under uptrace's otelsql", 600*time.Millisecond)

	line := here(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	checkRecorded(t, rec, "BEGIN", line, "otelsql_uptrace_outside", "github.com/uptrace/opentelemetry-go-extra/otelsql",
		"uptrace's otelsql.Open over sqlwatch's driver on MariaDB: db.BeginTx.")
	sameLine(t, "tx under uptrace's otelsql", s.leak(t, leak.KindTx).Origin, line)
}

// TestOtelsqlUptraceInside: sqlwatch wrapping uptrace's otelsql driver
// (driver.Register over the Driver of otelsql.Open's *sql.DB), the order
// that works with it, on MariaDB: a committed tx and the idle conn after
// it are silent, a leaked tx names this file.
func TestOtelsqlUptraceInside(t *testing.T) {
	d := dsn(t, mysqlEnv)
	s := newSink()
	odb, err := uptraceotelsql.Open("mysql", d)
	if err != nil {
		t.Fatal(err)
	}
	defer odb.Close()
	watched := name("mysql+uptrace+watch")
	if err := driver.Register(watched, odb.Driver(), s.opts(driver.WithDBName("shop"))...); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(watched, d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	ok, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ok.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := ok.Commit(); err != nil {
		t.Fatal(err)
	}
	s.quiet(t, "committed tx over uptrace's otelsql", 400*time.Millisecond)

	line := here(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	sameLine(t, "tx over uptrace's otelsql", s.leak(t, leak.KindTx).Origin, line)
}

// TestOtelsqlOutsideStack: XSAM/otelsql over sqlwatch's driver (over the
// stack recorder), on MariaDB: the real stack of a BeginTx, with
// otelsql's frames between database/sql and sqlwatch, filters to this
// file's line; a committed tx is silent.
func TestOtelsqlOutsideStack(t *testing.T) {
	d := dsn(t, mysqlEnv)
	s := newSink()
	watched, rec := watchRecorded(t, "mysql", s)
	db, err := otelsql.Open(watched, d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	ok, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.Commit(); err != nil {
		t.Fatal(err)
	}
	s.quiet(t, "committed tx under otelsql", 400*time.Millisecond)

	line := here(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	checkRecorded(t, rec, "BEGIN", line, "otelsql_xsam_outside", "github.com/XSAM/otelsql",
		"XSAM/otelsql.Open over sqlwatch's driver on MariaDB: db.BeginTx.")
	sameLine(t, "tx under otelsql", s.leak(t, leak.KindTx).Origin, line)
}
