package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	gormmysql "gorm.io/driver/mysql"
	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// realScript runs the same calls against a real database with and without
// sqlwatch; the transcripts must match.
func realScript(t *testing.T, b backend, db *sql.DB) []string {
	t.Helper()
	tr := &transcript{}
	ctx := context.Background()
	table := "sqlwatch_conf_" + b.name
	db.ExecContext(ctx, "DROP TABLE IF EXISTS "+table)
	_, err := db.ExecContext(ctx, "CREATE TABLE "+table+" (id INTEGER PRIMARY KEY, name VARCHAR(20))")
	tr.add("create: %v", err)
	defer db.ExecContext(ctx, "DROP TABLE "+table)

	// A syntax error: the driver's own error type must survive.
	_, err = db.ExecContext(ctx, "SELEC nonsense")
	tr.add("syntax error: %v", err)
	var myErr *mysql.MySQLError
	var pqErr *pq.Error
	var pgErr *pgconn.PgError
	tr.add("errors.As mysql=%v pq=%v pgx=%v", errors.As(err, &myErr), errors.As(err, &pqErr), errors.As(err, &pgErr))
	if myErr != nil {
		tr.add("mysql number %d", myErr.Number)
	}
	if pqErr != nil {
		tr.add("pq code %s", pqErr.Code)
	}
	if pgErr != nil {
		tr.add("pgx code %s", pgErr.Code)
	}

	for _, opts := range []*sql.TxOptions{
		nil,
		{Isolation: sql.LevelReadCommitted},
		{Isolation: sql.LevelSerializable},
		{Isolation: sql.LevelLinearizable},
		{ReadOnly: true},
	} {
		tx, err := db.BeginTx(ctx, opts)
		tr.add("begin %+v: %v", opts, err)
		if err != nil {
			continue
		}
		_, err = tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, name) VALUES (%d, 'x')", table, time.Now().UnixNano()%1e9))
		tr.add("  insert: %v", err)
		tr.add("  rollback: %v", tx.Rollback())
	}

	rows, err := db.QueryContext(ctx, "SELECT id, name FROM "+table)
	tr.add("query: %v", err)
	if err == nil {
		types, _ := rows.ColumnTypes()
		for _, ct := range types {
			n, okn := ct.Nullable()
			tr.add("  column %s %s %v null=%v,%v", ct.Name(), ct.DatabaseTypeName(), ct.ScanType(), n, okn)
		}
		tr.add("  next: %v, close: %v", rows.Next(), rows.Close())
	}
	return tr.lines
}

func TestConformanceWithRealDrivers(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		dsn := b.dsn(t)
		raw, err := sql.Open(b.inner, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		want := realScript(t, b, raw)
		db, _ := open(t, b)
		got := realScript(t, b, db)
		compareTranscripts(t, got, want)
	})
}

// TestRawReachesPgxConn runs pgx's CopyFrom through the driver's own conn,
// reached with Unwrap from sql.Conn.Raw.
func TestRawReachesPgxConn(t *testing.T) {
	b := backends[3]
	db, _ := open(t, b)
	ctx := context.Background()
	db.ExecContext(ctx, "DROP TABLE IF EXISTS sqlwatch_copy")
	if _, err := db.ExecContext(ctx, "CREATE TABLE sqlwatch_copy (id int, name text)"); err != nil {
		t.Fatal(err)
	}
	defer db.ExecContext(ctx, "DROP TABLE sqlwatch_copy")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		if _, ok := dc.(*stdlib.Conn); ok {
			t.Error("Raw handed out the driver's conn itself; want sqlwatch's")
		}
		pc, ok := driver.Unwrap(dc).(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("Unwrap gave %T; want *stdlib.Conn", driver.Unwrap(dc))
		}
		n, err := pc.Conn().CopyFrom(ctx, pgx.Identifier{"sqlwatch_copy"}, []string{"id", "name"},
			pgx.CopyFromRows([][]any{{1, "a"}, {2, "b"}, {3, "c"}}))
		if n != 3 {
			t.Errorf("CopyFrom copied %d rows; want 3", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlwatch_copy").Scan(&n); err != nil || n != 3 {
		t.Fatalf("count: got %d, %v; want 3", n, err)
	}
}

// TestOriginThroughSqlx: a tx leaked through sqlx names the test's line,
// not sqlx's.
func TestOriginThroughSqlx(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b)
		x := sqlx.NewDb(db, b.inner)
		line := nextLine()
		tx, err := x.Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		checkOrigin(t, ch.wait(t, leak.KindTx, false), line)

		line = nextLine()
		rows, err := x.Queryx("SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		checkOrigin(t, ch.wait(t, leak.KindRows, false), line)
	})
}

// TestOriginThroughGorm: gorm opened on the wrapped *sql.DB; a leaked
// transaction names the test's line, not gorm's.
func TestOriginThroughGorm(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		if b.name == "sqlite" {
			t.Skip("gorm is tested on MySQL and PostgreSQL")
		}
		db, ch := open(t, b)
		var dialector gorm.Dialector = gormpostgres.New(gormpostgres.Config{Conn: db})
		if b.name == "mysql" {
			dialector = gormmysql.New(gormmysql.Config{Conn: db})
		}
		g, err := gorm.Open(dialector, &gorm.Config{Logger: gormlogger.Discard})
		if err != nil {
			t.Fatal(err)
		}
		line := nextLine()
		tx := g.Begin()
		if tx.Error != nil {
			t.Fatal(tx.Error)
		}
		defer tx.Rollback()
		if err := tx.Exec("SELECT 1").Error; err != nil {
			t.Fatal(err)
		}
		r := ch.wait(t, leak.KindTx, false)
		checkOrigin(t, r, line)
		if r.LastQuery != "SELECT 1" {
			t.Errorf("last query: got %q; want %q", r.LastQuery, "SELECT 1")
		}
	})
}
