package driver_test

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"fmt"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/leak"
)

// killSQL returns the statements that read a session's id and kill that
// session on b's server, or ok false on SQLite.
func killSQL(b backend) (id, kill string, ok bool) {
	k, ok := map[string][2]string{
		"mysql":    {"SELECT CONNECTION_ID()", "KILL %d"},
		"postgres": {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
		"pgx":      {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
	}[b.name]
	return k[0], k[1], ok
}

// kills collects the conn_killed reports arriving within a few watchdog
// passes, passing over the others.
func (ch misuses) kills() []leak.Misuse {
	var out []leak.Misuse
	timeout := time.After(400 * time.Millisecond)
	for {
		select {
		case m := <-ch:
			if m.Kind == leak.MisuseConnKilled {
				out = append(out, m)
			}
		case <-timeout:
			return out
		}
	}
}

// checkDeaths fails unless db's tracker counted want conn_killed findings
// and the deaths in deaths (every other state zero).
func checkDeaths(t *testing.T, db *sql.DB, want int64, deaths map[string]int64) {
	t.Helper()
	st := driver.TrackerOf(db).Stats()
	if n := st.Misuse[leak.MisuseConnKilled]; n != want {
		t.Errorf("conn_killed counted %d times; want %d", n, want)
	}
	for _, s := range []string{leak.DeathIdle, leak.DeathHeld, leak.DeathInTx} {
		if st.ConnDeaths[s] != deaths[s] {
			t.Errorf("deaths: got %v; want %v", st.ConnDeaths, deaths)
			return
		}
	}
}

// shared is what a tx and a *sql.Conn have in common.
type shared interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// takeShared begins a tx (or takes a *sql.Conn) on db, ended when the
// test ends.
func takeShared(t *testing.T, db *sql.DB, kind string) shared {
	t.Helper()
	ctx := context.Background()
	if kind == "tx" {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() })
		return tx
	}
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSharedUseIsNoDeath: a statement on a tx or *sql.Conn whose rows
// are open, from another goroutine (concurrent) or the same one
// (open_rows), is reported as such, and the driver's answer to it is no
// conn death: no conn_killed, nothing counted in the deaths, however the
// application goes on (another statement, then Rollback or Close). The
// answers: pgx's "conn busy", which database/sql hands over as
// driver.ErrBadConn; go-sql-driver/mysql's "commands out of sync" when
// the statement is sent while the server is still sending the rows, after
// which the driver closes the conn ("driver: bad connection", "invalid
// connection"); lib/pq's "there is already a query being processed".
func TestSharedUseIsNoDeath(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, kind := range []string{"tx", "conn"} {
			for _, who := range []string{leak.MisuseConcurrent, leak.MisuseOpenRows} {
				t.Run(kind+"/"+who, func(t *testing.T) {
					if kind == "conn" && who == leak.MisuseOpenRows && b.name == "pgx" {
						t.Skip("database/sql deadlocks here: it closes the *sql.Conn after pgx's driver.ErrBadConn, waiting for the rows this goroutine holds")
					}
					db, ch := openMisuse(t, b)
					tbl := table(t, db, b)
					ctx := context.Background()
					q := takeShared(t, db, kind)
					query := "SELECT id FROM " + tbl + " ORDER BY id"
					if b.name == "mysql" {
						// The first row fills the server's net buffer and
						// is sent at once; the second comes 300ms later.
						query = "SELECT REPEAT('x', 100000) UNION ALL SELECT SLEEP(0.3)"
					}
					rows, err := q.QueryContext(ctx, query)
					if err != nil {
						t.Fatal(err)
					}
					if !rows.Next() {
						t.Fatal(rows.Err())
					}
					update := func() error {
						_, err := q.ExecContext(ctx, "UPDATE "+tbl+" SET n = 3 WHERE id = 2")
						return err
					}
					var overErr error
					if who == leak.MisuseConcurrent {
						// On a *sql.Conn, database/sql closes the Conn
						// after driver.ErrBadConn, which waits for the
						// rows to close: close them once the statement
						// has run (its report is out).
						done := make(chan error, 1)
						go func() { done <- update() }()
						ch.wait(t, who)
						rows.Close()
						overErr = <-done
					} else {
						overErr = update()
						rows.Close()
						ch.wait(t, who)
					}
					nextErr := update()
					var endErr error
					if tx, ok := q.(*sql.Tx); ok {
						endErr = tx.Rollback()
					} else {
						endErr = q.(*sql.Conn).Close()
					}
					if k := ch.kills(); len(k) > 0 {
						t.Errorf("conn_killed reported for a conn nobody killed: at %s (errors: %v, %v, %v)", k[0].Here.Origin, overErr, nextErr, endErr)
					}
					checkDeaths(t, db, 0, nil)
				})
			}
		}
	})
}

// TestConnKilledOnce: a held tx or *sql.Conn whose server session is
// killed is one death and one conn_killed report, naming the statement
// that failed; the statements after it (the deferred Rollback, a retry,
// Close) add nothing.
func TestConnKilledOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		idSQL, killFmt, ok := killSQL(b)
		if !ok {
			t.Skip("no server session to kill on SQLite")
		}
		for _, kind := range []string{"tx", "conn"} {
			t.Run(kind, func(t *testing.T) {
				db, ch := openMisuse(t, b)
				ctx := context.Background()
				var taken, failing string
				var failErr error
				func() {
					var q shared
					if kind == "tx" {
						taken = nextLine()
						tx, err := db.BeginTx(ctx, nil)
						if err != nil {
							t.Fatal(err)
						}
						defer tx.Rollback()
						q = tx
					} else {
						taken = nextLine()
						c, err := db.Conn(ctx)
						if err != nil {
							t.Fatal(err)
						}
						defer c.Close()
						q = c
					}
					var id int64
					rows, err := q.QueryContext(ctx, idSQL)
					if err != nil {
						t.Fatal(err)
					}
					for rows.Next() {
						rows.Scan(&id)
					}
					rows.Close()
					if _, err := db.ExecContext(ctx, fmt.Sprintf(killFmt, id)); err != nil {
						t.Fatal(err)
					}
					time.Sleep(100 * time.Millisecond)
					failing = nextLine()
					_, failErr = q.ExecContext(ctx, "SELECT 1")
					if failErr == nil {
						t.Fatal("a statement on the killed session succeeded")
					}
					// The application tries again before giving up.
					q.ExecContext(ctx, "SELECT 2")
				}()
				k := ch.kills()
				if len(k) != 1 {
					var at []string
					for _, m := range k {
						at = append(at, m.Here.Origin)
					}
					t.Fatalf("got %d conn_killed reports (at %v); want 1 (error %v)", len(k), at, failErr)
				}
				checkMisuse(t, k[0], failing, taken)
				state := map[string]string{"tx": leak.DeathInTx, "conn": leak.DeathHeld}[kind]
				if k[0].State != state || k[0].Idle < 100*time.Millisecond {
					t.Errorf("got state %s, idle %v; want %s, ≥ 100ms", k[0].State, k[0].Idle, state)
				}
				checkDeaths(t, db, 1, map[string]int64{state: 1})
			})
		}
	})
}

// TestCancelIsNoDeath: a statement, rows or tx abandoned at their
// context's end make the driver give up the conn (mysql and pgx close it
// or leave it inside the transaction, lib/pq marks it bad): the tx's next
// statements fail with a bad connection, and the pool may find the conn
// unusable at its next checkout (ResetSession). That is no kill: no
// conn_killed, no death counted.
func TestCancelIsNoDeath(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, what := range []string{"statement", "rows", "tx"} {
			t.Run(what, func(t *testing.T) {
				db, ch := openMisuse(t, b)
				db.SetMaxOpenConns(1) // the pool's next statement takes the same conn
				ctx := context.Background()
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				txCtx := ctx
				if what == "tx" {
					txCtx = cctx
				}
				tx, err := db.BeginTx(txCtx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if what == "rows" {
					rows, err := tx.QueryContext(cctx, many(b))
					if err != nil {
						t.Fatal(err)
					}
					rows.Next()
					cancel()
					for rows.Next() {
					}
					rows.Close()
				} else {
					slow := map[string]string{
						"sqlite":   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
						"mysql":    "SELECT SLEEP(5)",
						"postgres": "SELECT pg_sleep(5)",
						"pgx":      "SELECT pg_sleep(5)",
					}[b.name]
					time.AfterFunc(100*time.Millisecond, cancel)
					if _, err := tx.ExecContext(cctx, slow); err == nil {
						t.Fatal("the cancelled statement succeeded")
					}
				}
				if what == "tx" {
					waitFor(t, func() bool { return tx.Rollback() == sql.ErrTxDone })
				} else {
					tx.ExecContext(ctx, "SELECT 1")
					tx.Rollback()
				}
				if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
					t.Errorf("the pool's next statement: %v", err)
				}
				if k := ch.kills(); len(k) > 0 {
					t.Errorf("conn_killed reported after a cancellation: at %s", k[0].Here.Origin)
				}
				checkDeaths(t, db, 0, nil)
			})
		}
	})
}

// many is a query whose rows the server sends for a while, the first
// at once (each fills the server's send buffer).
func many(b backend) string {
	return map[string]string{
		"sqlite":   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1000000) SELECT x FROM c",
		"mysql":    "SELECT REPEAT('x', 20000), SLEEP(0.01) FROM information_schema.columns",
		"postgres": "SELECT repeat('x', 20000), pg_sleep(0.01) FROM generate_series(1, 10000)",
		"pgx":      "SELECT repeat('x', 20000), pg_sleep(0.01) FROM generate_series(1, 10000)",
	}[b.name]
}

// TestIdleSessionTimeout: PostgreSQL's idle_session_timeout (SQLSTATE
// 57P05, which pgx hands over as is) kills a held *sql.Conn: one
// conn_killed naming the statement that found it, with the idle time
// before it; and an idle pooled conn it kills is one idle death, retried
// by database/sql.
func TestIdleSessionTimeout(t *testing.T) {
	for _, b := range backends {
		if b.name != "postgres" && b.name != "pgx" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			t.Run("held", func(t *testing.T) {
				db, ch := openMisuse(t, b)
				ctx := context.Background()
				taken := nextLine()
				c, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.ExecContext(ctx, "SET idle_session_timeout = '200ms'"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(600 * time.Millisecond)
				failing := nextLine()
				_, err = c.ExecContext(ctx, "SELECT 1")
				if err == nil {
					t.Fatal("a statement after idle_session_timeout succeeded")
				}
				c.ExecContext(ctx, "SELECT 2")
				c.Close()
				k := ch.kills()
				if len(k) != 1 {
					t.Fatalf("got %d conn_killed reports; want 1 (error %v)", len(k), err)
				}
				checkMisuse(t, k[0], failing, taken)
				if k[0].State != leak.DeathHeld || k[0].Class != "bad_conn" || k[0].Idle < 500*time.Millisecond {
					t.Errorf("got state %s, class %s, idle %v; want held, bad_conn, ≥ 500ms (error %v)", k[0].State, k[0].Class, k[0].Idle, err)
				}
				checkDeaths(t, db, 1, map[string]int64{leak.DeathHeld: 1})
			})
			t.Run("pooled", func(t *testing.T) {
				db, ch := openMisuse(t, b)
				db.SetMaxOpenConns(1)
				ctx := context.Background()
				if _, err := db.ExecContext(ctx, "SET idle_session_timeout = '200ms'"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(600 * time.Millisecond)
				if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
					t.Logf("the pool's statement failed: %v", err)
				}
				if k := ch.kills(); len(k) > 0 {
					t.Errorf("conn_killed reported for a conn idle in the pool: at %s", k[0].Here.Origin)
				}
				checkDeaths(t, db, 0, map[string]int64{leak.DeathIdle: 1})
			})
		})
	}
}

// TestConnDiesOnceFake: the same rules on a fake driver, without a
// server: the first bad connection of a held tx is its one death and one
// report; a bad connection for a statement over open rows is none.
func TestConnDiesOnceFake(t *testing.T) {
	ch := make(misuses, 100)
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), driver.WithLogger(discard),
		driver.WithMisuseFunc(func(m leak.Misuse) { ch <- m }))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	ctx := context.Background()

	taken := nextLine()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	failing := nextLine()
	if _, err := tx.ExecContext(ctx, "BADCONN"); err != sqldriver.ErrBadConn {
		t.Fatalf("got %v; want driver.ErrBadConn", err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT 1"); err != sqldriver.ErrBadConn {
		t.Fatalf("got %v; want driver.ErrBadConn", err)
	}
	tx.Rollback()
	k := ch.kills()
	if len(k) != 1 {
		t.Fatalf("got %d conn_killed reports; want 1", len(k))
	}
	checkMisuse(t, k[0], failing, taken)
	checkDeaths(t, db, 1, map[string]int64{leak.DeathInTx: 1})

	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT ROWS 3")
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	if _, err := tx.ExecContext(ctx, "BADCONN"); err != sqldriver.ErrBadConn {
		t.Fatalf("got %v; want driver.ErrBadConn", err)
	}
	rows.Close()
	tx.ExecContext(ctx, "SELECT 1")
	tx.Rollback()
	ch.wait(t, leak.MisuseOpenRows)
	if k := ch.kills(); len(k) > 0 {
		t.Errorf("conn_killed reported for a statement over open rows: at %s", k[0].Here.Origin)
	}
	checkDeaths(t, db, 1, map[string]int64{leak.DeathInTx: 1})
}
