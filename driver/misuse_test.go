package driver_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/leak"
)

// misuses collects a pool's misuse reports.
type misuses chan leak.Misuse

func openMisuse(t *testing.T, b backend, opts ...driver.Option) (*sql.DB, misuses) {
	t.Helper()
	ch := make(misuses, 100)
	db, _ := open(t, b, append(opts, driver.WithMisuseFunc(func(m leak.Misuse) { ch <- m }))...)
	return db, ch
}

func (ch misuses) wait(t *testing.T, kind string) leak.Misuse {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-ch:
			if m.Kind == kind {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s report within 5s", kind)
		}
	}
}

// none fails on any report arriving within a few watchdog passes.
func (ch misuses) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-ch:
		t.Errorf("unexpected %s report: %s ← %s", m.Kind, m.Here.Origin, m.There.Origin)
	case <-time.After(300 * time.Millisecond):
	}
}

func table(t *testing.T, db *sql.DB, b backend) string {
	t.Helper()
	name := fmt.Sprintf("sqlwatch_misuse_%s", b.name)
	db.Exec("DROP TABLE IF EXISTS " + name)
	if _, err := db.Exec("CREATE TABLE " + name + " (id INTEGER PRIMARY KEY, n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO " + name + " (id, n) VALUES (1, 0), (2, 0)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP TABLE " + name) })
	return name
}

func TestTxBypass(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		ctx := context.Background()
		begin := nextLine()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if b.name == "sqlite" {
			// SQLite allows one writer: the bypass reads.
			bypass := nextLine()
			if _, err := db.ExecContext(ctx, "SELECT n FROM "+tbl); err != nil {
				t.Fatal(err)
			}
			m := ch.wait(t, leak.MisuseTxBypass)
			checkMisuse(t, m, bypass, begin)
			return
		}
		bypass := nextLine()
		if _, err := db.ExecContext(ctx, "UPDATE "+tbl+" SET n = n + 1 WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		m := ch.wait(t, leak.MisuseTxBypass)
		checkMisuse(t, m, bypass, begin)
		if m.Here.Goroutine == 0 || m.Here.Goroutine != m.There.Goroutine {
			t.Errorf("goroutines: here %d, tx %d; want the same, nonzero", m.Here.Goroutine, m.There.Goroutine)
		}
		if !strings.HasPrefix(m.Here.Query, "UPDATE ") {
			t.Errorf("query: %q", m.Here.Query)
		}
	})
}

func checkMisuse(t *testing.T, m leak.Misuse, here, there string) {
	t.Helper()
	if m.Here.Origin != here || m.There.Origin != there {
		t.Errorf("%s: got here %s, there %s; want %s, %s", m.Kind, m.Here.Origin, m.There.Origin, here, there)
	}
}

// TestNoFalseMisuse: correct code raises nothing.
func TestNoFalseMisuse(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		ctx := context.Background()

		// A tx on one goroutine, pool queries on another.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				var n int
				db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n)
			}
		}()
		wg.Wait()
		// Sequential statements on the tx, rows read to the end and closed
		// before the next one.
		for i := range 3 {
			rows, err := tx.QueryContext(ctx, "SELECT id FROM "+tbl)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET n = %d WHERE id = 1", tbl, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		// A tx rolled back by its context, on database/sql's goroutine.
		cctx, cancel := context.WithCancel(ctx)
		tx2, err := db.BeginTx(cctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx2.ExecContext(cctx, "SELECT 1")
		cancel()
		waitFor(t, func() bool { return tx2.Rollback() == sql.ErrTxDone })
		// Then the pool again, on this goroutine.
		if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		ch.none(t)
	})
}

func TestOpenRowsAndConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		ctx := context.Background()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		query := nextLine()
		rows, err := tx.QueryContext(ctx, "SELECT id FROM "+tbl+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		rows.Next()
		// Same goroutine: open_rows. The driver's own answer (an error
		// on MySQL, "busy buffer") reaches us unchanged.
		over := nextLine()
		_, execErr := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = 1 WHERE id = 2")
		m := ch.wait(t, leak.MisuseOpenRows)
		checkMisuse(t, m, over, query)
		if b.name == "mysql" && (execErr == nil || !strings.Contains(execErr.Error(), "busy buffer")) {
			t.Errorf("mysql: got %v; want the driver's busy buffer error", execErr)
		}

		// Another goroutine: concurrent.
		var other string
		done := make(chan struct{})
		go func() {
			defer close(done)
			other = nextLine()
			tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = 2 WHERE id = 2")
		}()
		<-done
		m = ch.wait(t, leak.MisuseConcurrent)
		checkMisuse(t, m, other, query)
		if m.Here.Goroutine == m.There.Goroutine {
			t.Errorf("concurrent: both sides on goroutine %d", m.Here.Goroutine)
		}
		rows.Close()
	})
}

func TestLockConflict(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		ctx := context.Background()
		holder := nextLine()
		tx1, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx1.Rollback()
		if _, err := tx1.ExecContext(ctx, "UPDATE "+tbl+" SET n = 10 WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		setup := shortLockWait(b)
		if _, err := conn.ExecContext(ctx, setup); err != nil {
			t.Fatal(err)
		}
		tx2, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx2.Rollback()
		failing := nextLine()
		_, err = tx2.ExecContext(ctx, "UPDATE "+tbl+" SET n = 20 WHERE id = 1")
		if err == nil {
			t.Fatal("the second update did not fail")
		}
		m := ch.wait(t, leak.MisuseLockConflict)
		if m.Here.Origin != failing {
			t.Errorf("origin: got %s; want %s", m.Here.Origin, failing)
		}
		want := map[string]string{"sqlite": "busy", "mysql": "lock_timeout", "postgres": "lock_timeout", "pgx": "lock_timeout"}[b.name]
		if m.Class != want {
			t.Errorf("class: got %s; want %s (error %v)", m.Class, want, err)
		}
		if len(m.Holders) == 0 || m.Holders[0].Origin != holder || !m.Holders[0].Wrote {
			t.Errorf("holders: got %+v; want the first tx, begun at %s, that wrote", m.Holders, holder)
		}
	})
}

func TestConnKilled(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		kill := map[string][2]string{
			"mysql":    {"SELECT CONNECTION_ID()", "KILL %d"},
			"postgres": {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
			"pgx":      {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
		}[b.name]
		if kill[0] == "" {
			t.Skip("no server session to kill on SQLite")
		}
		// The failing statement is direct or prepared (the prepared
		// path records its statement differently; the idle time must
		// be the time before it either way).
		for _, prepared := range []bool{false, true} {
			t.Run(map[bool]string{false: "direct", true: "prepared"}[prepared], func(t *testing.T) {
				db, ch := openMisuse(t, b)
				ctx := context.Background()
				begin := nextLine()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				var id int64
				if err := tx.QueryRowContext(ctx, kill[0]).Scan(&id); err != nil {
					t.Fatal(err)
				}
				stmt, err := tx.PrepareContext(ctx, "SELECT 1")
				if err != nil {
					t.Fatal(err)
				}
				defer stmt.Close()
				if _, err := db.ExecContext(ctx, fmt.Sprintf(kill[1], id)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
				var failing string
				if prepared {
					failing = nextLine()
					_, err = stmt.ExecContext(ctx)
				} else {
					failing = nextLine()
					_, err = tx.ExecContext(ctx, "SELECT 1")
				}
				if err == nil {
					t.Fatal("a statement on the killed session succeeded")
				}
				m := ch.wait(t, leak.MisuseConnKilled)
				checkMisuse(t, m, failing, begin)
				if m.State != leak.DeathInTx || m.Class != "bad_conn" || m.Idle < 100*time.Millisecond {
					t.Errorf("got state %s, class %s, idle %v; want in_tx, bad_conn, ≥ 100ms (error %v)", m.State, m.Class, m.Idle, err)
				}
				if st := driver.TrackerOf(db).Stats(); st.ConnDeaths[leak.DeathInTx] < 1 {
					t.Errorf("deaths: %v", st.ConnDeaths)
				}
			})
		}
	})
}

// TestBypassOnReusedConnCountedOnce: a bypass on a conn taken from the
// idle pool (ResetSession, then the statement) is one finding, and its
// report names the statement.
func TestBypassOnReusedConnCountedOnce(t *testing.T) {
	ch := make(misuses, 100)
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), driver.WithLogger(discard),
		driver.WithMisuseFunc(func(m leak.Misuse) { ch <- m }))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	// Two conns in the idle pool, so that both the tx and the bypass
	// take a used one.
	ctx := context.Background()
	c1, _ := db.Conn(ctx)
	c2, _ := db.Conn(ctx)
	c1.PingContext(ctx)
	c2.PingContext(ctx)
	c1.Close()
	c2.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := db.ExecContext(ctx, "UPDATE bypass"); err != nil {
		t.Fatal(err)
	}
	m := ch.wait(t, leak.MisuseTxBypass)
	if m.Here.Query != "UPDATE bypass" {
		t.Errorf("report query = %q; want UPDATE bypass", m.Here.Query)
	}
	if n := driver.TrackerOf(db).Stats().Misuse[leak.MisuseTxBypass]; n != 1 {
		t.Errorf("tx_bypass counted %d times; want 1", n)
	}
}
