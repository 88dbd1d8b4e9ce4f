package driver_test

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// sqlTxCase is a sequence of statements run on one *sql.Conn, from one
// line, before the conn is closed. A statement prefixed "!" must fail.
type sqlTxCase struct {
	name  string
	on    []string // backends; nil: all
	stmts []string
}

func (c sqlTxCase) runsOn(b backend) bool { return c.on == nil || slices.Contains(c.on, b.name) }

// runSQLTx runs c's statements on a *sql.Conn of db from one line (its
// returned begin line) and closes the conn (the returned release line).
func runSQLTx(t *testing.T, db *sql.DB, tbl string, c sqlTxCase) (begin, release string) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range c.stmts {
		q = strings.ReplaceAll(q, "$T", tbl)
		fail := strings.HasPrefix(q, "!")
		q = strings.TrimPrefix(q, "!")
		begin = nextLine()
		_, err := conn.ExecContext(ctx, q)
		if fail != (err != nil) {
			t.Fatalf("%q: got error %v; want failure %v", q, err, fail)
		}
	}
	release = nextLine()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	return begin, release
}

// TestSQLTxLeak: a conn returned to the pool inside a transaction begun
// with SQL is reported once, naming the BEGIN and the release, and the
// next checkout's statement is reported as running inside it (pgx's
// ResetSession refuses such a conn instead: no reuse, no conn death).
func TestSQLTxLeak(t *testing.T) {
	cases := []sqlTxCase{
		{"begin", nil, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1"}},
		{"comment", nil, []string{"-- leading comment\n/* and another */ begin", "UPDATE $T SET n = 1 WHERE id = 1"}},
		{"rollback to savepoint", nil, []string{"BEGIN", "SAVEPOINT a", "UPDATE $T SET n = 1 WHERE id = 1", "ROLLBACK TO SAVEPOINT a"}},
		{"start transaction", []string{"mysql", "postgres", "pgx"}, []string{"START TRANSACTION", "UPDATE $T SET n = 1 WHERE id = 1"}},
		{"begin immediate", []string{"sqlite"}, []string{"BEGIN IMMEDIATE", "UPDATE $T SET n = 1 WHERE id = 1"}},
		{"autocommit off", []string{"mysql"}, []string{"SET autocommit = 0", "UPDATE $T SET n = 1 WHERE id = 1", "COMMIT"}},
		{"multi-statement", []string{"pgx"}, []string{"BEGIN; UPDATE $T SET n = 1 WHERE id = 1"}},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		for _, c := range cases {
			if !c.runsOn(b) {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				db, ch := openMisuse(t, b)
				tbl := table(t, db, b)
				db.SetMaxOpenConns(1) // the next checkout takes the same conn
				ctx := context.Background()
				begin, release := runSQLTx(t, db, tbl, c)
				// The next checkout: the pool kept the conn, so the release
				// is reported now, then the statement that ran inside it.
				reuse := nextLine()
				if _, err := db.ExecContext(ctx, "UPDATE "+tbl+" SET n = 2 WHERE id = 2"); err != nil {
					t.Fatal(err)
				}
				m := ch.wait(t, leak.MisuseSQLTxLeak)
				checkMisuse(t, m, release, begin)
				if m.State != leak.SQLTxReleased || m.Here.Query != "" || !strings.Contains(m.There.Query, strings.Fields(c.stmts[0])[0]) {
					t.Errorf("state %q, query %q, tx query %q", m.State, m.Here.Query, m.There.Query)
				}
				if m.Here.Goroutine == 0 || m.There.Goroutine != m.Here.Goroutine || m.Age <= 0 {
					t.Errorf("goroutines %d, %d; age %v", m.Here.Goroutine, m.There.Goroutine, m.Age)
				}
				if b.name == "pgx" {
					ch.none(t)
					if d := driver.TrackerOf(db).Stats().ConnDeaths; d[leak.DeathIdle] != 0 {
						t.Errorf("conn deaths: %v; want none (pgx refused the conn on purpose)", d)
					}
				} else {
					m = ch.wait(t, leak.MisuseSQLTxLeak)
					checkMisuse(t, m, reuse, begin)
					if m.State != leak.SQLTxReused || !strings.HasPrefix(m.Here.Query, "UPDATE ") {
						t.Errorf("state %q, query %q", m.State, m.Here.Query)
					}
				}
				// Released again inside the same tx, then ended: nothing more.
				if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, "ROLLBACK"); err != nil && b.name != "pgx" {
					t.Fatal(err)
				}
				db.ExecContext(ctx, "SET autocommit = 1") // MySQL; fails elsewhere
				if _, err := db.ExecContext(ctx, "UPDATE "+tbl+" SET n = 3 WHERE id = 2"); err != nil {
					t.Fatal(err)
				}
				ch.none(t)
				if got := driver.TrackerOf(db).Stats().Misuse[leak.MisuseSQLTxLeak]; (b.name == "pgx" && got != 1) || (b.name != "pgx" && got != 2) {
					t.Errorf("sql_tx_leak counted %d times", got)
				}
			})
		}
	})
}

// TestSQLTxLeakPool: db.ExecContext(ctx, "BEGIN") on the pool leaves the
// conn in the tx at once: the BEGIN and the release are one line.
func TestSQLTxLeakPool(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		db.SetMaxOpenConns(1)
		ctx := context.Background()
		line := nextLine()
		if _, err := db.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		db.ExecContext(ctx, "ROLLBACK") // the next checkout: a cure, no reuse
		m := ch.wait(t, leak.MisuseSQLTxLeak)
		checkMisuse(t, m, line, line)
		if m.State != leak.SQLTxReleased {
			t.Errorf("state %q", m.State)
		}
		ch.none(t)
	})
}

// TestSQLTxNoFalseReport: SQL-level transactions ended correctly, a BEGIN
// that fails, text whose end state is unknown, and a conn discarded in
// its tx are never reported, at the release or at the next checkout.
func TestSQLTxNoFalseReport(t *testing.T) {
	cases := []sqlTxCase{
		{"commit", nil, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1", "COMMIT"}},
		{"rollback", nil, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1", "ROLLBACK"}},
		{"savepoint", nil, []string{"BEGIN", "SAVEPOINT a", "ROLLBACK TO SAVEPOINT a", "COMMIT"}},
		{"failed begin", nil, []string{"!BEGIN sqlwatch bogus syntax", "UPDATE $T SET n = 1 WHERE id = 1"}},
		{"failed set autocommit", nil, []string{"!SET autocommit = 'bogus'"}},
		{"begin work", []string{"mysql", "postgres", "pgx"}, []string{"BEGIN WORK", "UPDATE $T SET n = 1 WHERE id = 1", "COMMIT WORK"}},
		{"start transaction", []string{"mysql", "postgres", "pgx"}, []string{"START TRANSACTION", "UPDATE $T SET n = 1 WHERE id = 1", "COMMIT"}},
		{"end", []string{"postgres", "pgx", "sqlite"}, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1", "END"}},
		{"abort", []string{"postgres", "pgx"}, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1", "ABORT"}},
		{"commit in aborted tx", []string{"postgres", "pgx"}, []string{"BEGIN", "!SELECT 1/0", "!SELECT 1", "COMMIT"}},
		{"begin in tx", []string{"postgres", "pgx", "mysql"}, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1", "BEGIN", "COMMIT"}},
		{"failed begin in tx", []string{"sqlite"}, []string{"BEGIN", "!BEGIN", "COMMIT"}},
		{"sqlite forms", []string{"sqlite"}, []string{"BEGIN DEFERRED", "UPDATE $T SET n = 1 WHERE id = 1", "END TRANSACTION",
			"BEGIN EXCLUSIVE TRANSACTION", "UPDATE $T SET n = 2 WHERE id = 1", "COMMIT TRANSACTION",
			"BEGIN IMMEDIATE", "ROLLBACK TRANSACTION"}},
		{"autocommit", []string{"mysql"}, []string{"SET autocommit = 0", "UPDATE $T SET n = 1 WHERE id = 1", "COMMIT", "SET autocommit = 1"}},
		{"autocommit off/on", []string{"mysql"}, []string{"SET SESSION autocommit = OFF", "UPDATE $T SET n = 1 WHERE id = 1", "SET @@autocommit = ON"}},
		{"implicit commit", []string{"mysql"}, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1",
			"CREATE TABLE IF NOT EXISTS sqlwatch_sqltx_ddl (a INT)", "DROP TABLE sqlwatch_sqltx_ddl"}},
		{"multi-statement", []string{"postgres", "pgx", "sqlite"}, []string{"BEGIN; UPDATE $T SET n = 1 WHERE id = 1; COMMIT"}},
		{"multi-statement refused", []string{"mysql"}, []string{"!BEGIN; UPDATE $T SET n = 1 WHERE id = 1"}},
		{"commit in multi-statement", []string{"postgres", "pgx", "sqlite"}, []string{"BEGIN", "UPDATE $T SET n = 1 WHERE id = 1; COMMIT"}},
		{"compound statement", []string{"mysql"}, []string{"BEGIN NOT ATOMIC SELECT 1; END"}},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		for _, c := range cases {
			if !c.runsOn(b) {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				db, ch := openMisuse(t, b)
				tbl := table(t, db, b)
				db.SetMaxOpenConns(1)
				runSQLTx(t, db, tbl, c)
				if _, err := db.Exec("UPDATE " + tbl + " SET n = 5 WHERE id = 2"); err != nil {
					t.Fatal(err)
				}
				ch.none(t)
			})
		}
		t.Run("driver tx", func(t *testing.T) {
			// Text inside a BeginTx tx is that tx's own.
			db, ch := openMisuse(t, b)
			tbl := table(t, db, b)
			db.SetMaxOpenConns(1)
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"SAVEPOINT a", "UPDATE " + tbl + " SET n = 1 WHERE id = 1", "ROLLBACK TO SAVEPOINT a"} {
				if _, err := tx.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			db.Exec("SELECT 1")
			ch.none(t)
		})
		t.Run("discarded by the pool", func(t *testing.T) {
			// IsValid keeps the conn, then the pool closes it at once
			// (no idle slot): the server ends the tx, no leak.
			db, ch := openMisuse(t, b)
			tbl := table(t, db, b)
			db.SetMaxIdleConns(0)
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			if _, err := db.Exec("UPDATE " + tbl + " SET n = 5 WHERE id = 2"); err != nil {
				t.Fatal(err)
			}
			ch.none(t)
		})
		t.Run("discarded", func(t *testing.T) {
			// A conn the pool discards is no leak: the server ends its tx.
			db, ch := openMisuse(t, b)
			tbl := table(t, db, b)
			db.SetMaxOpenConns(1)
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			if err := conn.Raw(func(any) error { return sqldriver.ErrBadConn }); err != sqldriver.ErrBadConn {
				t.Fatalf("Raw: %v", err)
			}
			conn.Close()
			if _, err := db.Exec("UPDATE " + tbl + " SET n = 5 WHERE id = 2"); err != nil {
				t.Fatal(err)
			}
			ch.none(t)
		})
	})
}

// TestSQLTxReuseByStmtAndTx: the next checkout's first statement is
// reported whether it is a prepared statement or, on MySQL, a BeginTx
// (whose START TRANSACTION commits the leftover: nothing after it).
func TestSQLTxReuseByStmtAndTx(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		if b.name == "pgx" {
			t.Skip("pgx's ResetSession discards the conn: no reuse")
		}
		ctx := context.Background()
		t.Run("stmt", func(t *testing.T) {
			db, ch := openMisuse(t, b)
			tbl := table(t, db, b)
			db.SetMaxOpenConns(1)
			begin := nextLine()
			if _, err := db.ExecContext(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			stmt, err := db.PrepareContext(ctx, "UPDATE "+tbl+" SET n = 7 WHERE id = 1")
			if err != nil {
				t.Fatal(err)
			}
			defer stmt.Close()
			reuse := nextLine()
			if _, err := stmt.ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			if m := ch.wait(t, leak.MisuseSQLTxLeak); m.State != leak.SQLTxReleased {
				t.Errorf("state %q; want the release first", m.State)
			}
			m := ch.wait(t, leak.MisuseSQLTxLeak)
			checkMisuse(t, m, reuse, begin)
			if m.State != leak.SQLTxReused {
				t.Errorf("state %q", m.State)
			}
			db.ExecContext(ctx, "ROLLBACK")
		})
		if b.name != "mysql" {
			return
		}
		t.Run("begin tx", func(t *testing.T) {
			db, ch := openMisuse(t, b)
			tbl := table(t, db, b)
			db.SetMaxOpenConns(1)
			begin := nextLine()
			if _, err := db.ExecContext(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			reuse := nextLine()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m := ch.wait(t, leak.MisuseSQLTxLeak); m.State != leak.SQLTxReleased {
				t.Errorf("state %q; want the release first", m.State)
			}
			m := ch.wait(t, leak.MisuseSQLTxLeak)
			checkMisuse(t, m, reuse, begin)
			if m.State != leak.SQLTxReused || m.Here.Query != "BEGIN" {
				t.Errorf("state %q, query %q", m.State, m.Here.Query)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = 8 WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "UPDATE "+tbl+" SET n = 9 WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			ch.none(t)
		})
	})
}

// TestSQLTxLeakClosedIdle: a conn left in the pool inside the tx, then
// closed by the pool's cleaner (ConnMaxIdleTime) before anyone took it,
// held the tx all that time: the release is reported then.
func TestSQLTxLeakClosedIdle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		db.SetMaxOpenConns(1)
		c := sqlTxCase{stmts: []string{"BEGIN"}}
		begin, release := runSQLTx(t, db, "", c)
		db.SetConnMaxIdleTime(50 * time.Millisecond) // the cleaner runs within about a second
		m := ch.wait(t, leak.MisuseSQLTxLeak)
		checkMisuse(t, m, release, begin)
		if m.State != leak.SQLTxReleased {
			t.Errorf("state %q", m.State)
		}
	})
}

// TestSQLTxLeakPgxUnrecognised: pgx says the conn is in a tx that no
// statement the text check knows began; the report names the release
// for both sides.
func TestSQLTxLeakPgxUnrecognised(t *testing.T) {
	for _, b := range backends {
		if b.name != "pgx" {
			continue
		}
		db, ch := openMisuse(t, b)
		db.SetMaxOpenConns(1)
		_, release := runSQLTx(t, db, "", sqlTxCase{stmts: []string{"SELECT 1; BEGIN"}})
		if _, err := db.Exec("SELECT 2"); err != nil {
			t.Fatal(err)
		}
		m := ch.wait(t, leak.MisuseSQLTxLeak)
		checkMisuse(t, m, release, release)
		if m.State != leak.SQLTxReleased || m.There.Query != "" {
			t.Errorf("state %q, tx query %q", m.State, m.There.Query)
		}
	}
}
