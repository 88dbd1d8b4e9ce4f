package integration

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	sq "github.com/Masterminds/squirrel"
	"github.com/doug-martin/goqu/v9"
	_ "github.com/doug-martin/goqu/v9/dialect/postgres"
	"github.com/georgysavva/scany/v2/sqlscan"
	glebarez "github.com/glebarez/sqlite"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	gormmysql "gorm.io/driver/mysql"
	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// open registers a wrapped driver for inner and opens a pool on env's DSN.
func open(t *testing.T, inner, env string, s *sink, extra ...driver.Option) *sql.DB {
	t.Helper()
	d := dsn(t, env)
	watched := name(inner + "+watch")
	if err := driver.RegisterByName(watched, inner, s.opts(extra...)...); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(watched, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var dbs = []struct{ name, inner, env string }{
	{"mysql", "mysql", mysqlEnv},
	{"postgres", "pgx", postgresEnv},
}

// TestGorm: gorm on the wrapped *sql.DB (Config.Conn); a leaked tx names
// this file, and WithRedactedSQL keeps gorm's quoted identifiers on
// PostgreSQL.
func TestGorm(t *testing.T) {
	for _, c := range dbs {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			db := open(t, c.inner, c.env, s, driver.WithRedactedSQL())
			var dialector gorm.Dialector = gormmysql.New(gormmysql.Config{Conn: db})
			if c.name == "postgres" {
				dialector = gormpostgres.New(gormpostgres.Config{Conn: db})
			}
			g, err := gorm.Open(dialector, &gorm.Config{Logger: gormlogger.Discard})
			if err != nil {
				t.Fatal(err)
			}
			type Account struct {
				ID   int64
				Name string
			}
			g.Migrator().DropTable(&Account{})
			if err := g.AutoMigrate(&Account{}); err != nil {
				t.Fatal(err)
			}
			defer g.Migrator().DropTable(&Account{})
			line := here(1)
			tx := g.Begin()
			defer tx.Rollback()
			if err := tx.Create(&Account{ID: 4242, Name: "secret"}).Error; err != nil {
				t.Fatal(err)
			}
			r := s.leak(t, leak.KindTx)
			sameLine(t, "gorm tx", r.Origin, line)
			want := "INSERT INTO `accounts` (`name`,`id`) VALUES (?,?) RETURNING `id`" // MariaDB has RETURNING
			if c.name == "postgres" {
				want = `INSERT INTO "accounts" ("name","id") VALUES ($1,$2) RETURNING "id"`
			}
			if r.LastQuery != want {
				t.Errorf("last query %q; want %q", r.LastQuery, want)
			}
		})
	}
}

// TestBun: bun on the wrapped *sql.DB; a leaked tx names this file. bun
// writes argument values into the SQL text: without WithRedactedSQL the
// report shows them, with it they are gone.
func TestBun(t *testing.T) {
	for _, c := range dbs {
		for _, redacted := range []bool{false, true} {
			sub := c.name
			if redacted {
				sub += "/redacted"
			}
			t.Run(sub, func(t *testing.T) {
				s := newSink()
				var opts []driver.Option
				if redacted {
					opts = append(opts, driver.WithRedactedSQL())
				}
				db := open(t, c.inner, c.env, s, opts...)
				var bdb *bun.DB
				if c.name == "postgres" {
					bdb = bun.NewDB(db, pgdialect.New())
				} else {
					bdb = bun.NewDB(db, mysqldialect.New())
				}
				ctx := context.Background()
				line := here(1)
				tx, err := bdb.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				var n int
				if err := tx.NewSelect().ColumnExpr("count(*)").TableExpr("information_schema.tables").
					Where("table_name = ?", "secret-4242").Scan(ctx, &n); err != nil {
					t.Fatal(err)
				}
				r := s.leak(t, leak.KindTx)
				sameLine(t, "bun tx", r.Origin, line)
				if inlined := strings.Contains(r.LastQuery, "secret-4242"); inlined == redacted {
					t.Errorf("redacted=%v: last query %q", redacted, r.LastQuery)
				}
			})
		}
	}
}

// TestEnt: ent's SQL driver on the wrapped *sql.DB (entsql.OpenDB, which
// a generated ent.Client takes with ent.Driver); a leaked tx names this
// file.
func TestEnt(t *testing.T) {
	for _, c := range dbs {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			db := open(t, c.inner, c.env, s)
			d := dialect.MySQL
			if c.name == "postgres" {
				d = dialect.Postgres
			}
			drv := entsql.OpenDB(d, db)
			ctx := context.Background()
			line := here(1)
			tx, err := drv.Tx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var rows entsql.Rows
			if err := tx.Query(ctx, "SELECT 1", []any{}, &rows); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			sameLine(t, "ent tx", s.leak(t, leak.KindTx).Origin, line)
		})
	}
}

// TestSquirrel: a query built and run by squirrel; rows closed are
// silent, the rows left open name this file, not squirrel's.
func TestSquirrel(t *testing.T) {
	for _, c := range dbs {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			watched, rec := watchRecorded(t, c.inner, s)
			db, err := sql.Open(watched, dsn(t, c.env))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			b := sq.Select("table_name").From("information_schema.tables").Where(sq.Eq{"table_name": "x"}).Limit(1)
			if c.name == "postgres" {
				b = b.PlaceholderFormat(sq.Dollar)
			}
			closed, err := b.RunWith(db).QueryContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for closed.Next() {
			}
			closed.Close()
			s.quiet(t, "squirrel rows closed", 400*time.Millisecond)

			line := here(1)
			rows, err := b.RunWith(db).QueryContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			if c.name == "postgres" { // pgx runs it in QueryContext; go-sql-driver prepares
				checkRecorded(t, rec, "information_schema", line, "squirrel_query", "github.com/Masterminds/squirrel",
					"sq.Select(...).RunWith(db).QueryContext on PostgreSQL (pgx stdlib).")
			}
			sameLine(t, "squirrel rows", s.leak(t, leak.KindRows).Origin, line)
		})
	}
}

// TestGoqu: goqu on the wrapped pool, on PostgreSQL (pgx): values scanned
// by goqu are silent; rows from its executor left open and a tx begun with
// goqu and left open name this file.
func TestGoqu(t *testing.T) {
	s := newSink()
	watched, rec := watchRecorded(t, "pgx", s)
	db, err := sql.Open(watched, dsn(t, postgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	g := goqu.New("postgres", db)
	var vals []int
	if err := g.Select(goqu.L("1")).ScanValsContext(ctx, &vals); err != nil || len(vals) != 1 {
		t.Fatalf("ScanValsContext: %v, %v", vals, err)
	}
	ok, err := g.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ok.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := ok.Commit(); err != nil {
		t.Fatal(err)
	}
	s.quiet(t, "goqu used correctly", 400*time.Millisecond)

	line := here(1)
	rows, err := g.Select(goqu.L("2 AS goqu_leak")).Executor().QueryContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checkRecorded(t, rec, "goqu_leak", line, "goqu_query", "github.com/doug-martin/goqu/v9",
		`goqu.New("postgres", db).Select(...).Executor().QueryContext on PostgreSQL (pgx stdlib).`)
	sameLine(t, "goqu rows", s.leak(t, leak.KindRows).Origin, line)

	line = here(1)
	tx, err := g.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	sameLine(t, "goqu tx", s.leak(t, leak.KindTx).Origin, line)
}

// TestScany: scany's sqlscan closes the rows it reads, so what it can
// cause is a statement outside the goroutine's open tx. On PostgreSQL
// (pgx): sqlscan.Get on the tx is silent; sqlscan.Get on the pool while
// the tx is open is a tx_bypass at this file's line, not scany's.
func TestScany(t *testing.T) {
	s := newSink()
	watched, rec := watchRecorded(t, "pgx", s)
	db, err := sql.Open(watched, dsn(t, postgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var n int
	ok, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlscan.Get(ctx, ok, &n, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := ok.Commit(); err != nil {
		t.Fatal(err)
	}
	var all []int
	if err := sqlscan.Select(ctx, db, &all, "SELECT generate_series(1, 3)"); err != nil || len(all) != 3 {
		t.Fatalf("Select: %v, %v", all, err)
	}
	s.quiet(t, "scany used correctly", 400*time.Millisecond)

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	line := here(1)
	if err := sqlscan.Get(ctx, db, &n, "SELECT 2 AS scany_bypass"); err != nil { // the pool, not tx
		t.Fatal(err)
	}
	checkRecorded(t, rec, "scany_bypass", line, "scany_get", "github.com/georgysavva/scany/v2",
		"sqlscan.Get(ctx, db, ...) on PostgreSQL (pgx stdlib) while the goroutine holds a tx.")
	sameLine(t, "scany bypass", s.misuse(t, "tx_bypass").Here.Origin, line)
}

// TestGormGlebarezSQLite: gorm over github.com/glebarez/sqlite, the
// pure-Go dialector, pointed at sqlwatch's driver over glebarez/go-sqlite
// by Dialector.DriverName. AutoMigrate and a committed Transaction are
// silent; AutoMigrate's queries run in the dialector's Migrator and are
// placed at this file; a tx from g.Begin left open names this file.
func TestGormGlebarezSQLite(t *testing.T) {
	s := newSink()
	watched, rec := watchRecorded(t, "sqlite", s)
	g, err := gorm.Open(glebarez.Dialector{DriverName: watched, DSN: filepath.Join(t.TempDir(), "shop.db")},
		&gorm.Config{Logger: gormlogger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	db, err := g.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type account struct {
		ID   int64
		Name string
	}
	migrate := here(1)
	if err := g.AutoMigrate(&account{}); err != nil {
		t.Fatal(err)
	}
	checkRecorded(t, rec, "sqlite_master", migrate, "gorm_glebarez_sqlite", "github.com/glebarez/sqlite",
		"gorm.Open(glebarez.Dialector{DriverName: <sqlwatch over glebarez/go-sqlite>}),\nthen g.AutoMigrate: the Migrator's HasTable query.")
	err = g.Transaction(func(tx *gorm.DB) error {
		return tx.Create(&account{ID: 1, Name: "a"}).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	s.quiet(t, "gorm on glebarez used correctly", 400*time.Millisecond)

	line := here(1)
	tx := g.Begin()
	if tx.Error != nil {
		t.Fatal(tx.Error)
	}
	defer tx.Rollback()
	sameLine(t, "gorm glebarez tx", s.leak(t, leak.KindTx).Origin, line)
}
