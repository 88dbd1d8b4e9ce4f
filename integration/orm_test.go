package integration

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	sq "github.com/Masterminds/squirrel"
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

// TestSquirrel: a query built and run by squirrel; the rows left open
// name this file, not squirrel's.
func TestSquirrel(t *testing.T) {
	for _, c := range dbs {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			db := open(t, c.inner, c.env, s)
			b := sq.Select("table_name").From("information_schema.tables").Where(sq.Eq{"table_name": "x"}).Limit(1)
			if c.name == "postgres" {
				b = b.PlaceholderFormat(sq.Dollar)
			}
			line := here(1)
			rows, err := b.RunWith(db).QueryContext(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			sameLine(t, "squirrel rows", s.leak(t, leak.KindRows).Origin, line)
		})
	}
}
