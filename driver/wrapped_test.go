package driver_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/testutil"
	"github.com/sqlwatch/sqlwatch/leak"
)

const hiddenWarning = "conn leak reports of this pool wait"

// openWrapped opens a pool through a driver wrapper outside sqlwatch
// (testutil.Wrapper over the Driver of a pool opened through sqlwatch, as
// uptrace's otelsql.Open does). The pool's log goes to the returned
// buffer, its reports to the channel; watched is the pool whose Driver
// the wrapper opens conns with (leak.Snapshot sees the conns through it).
func openWrapped(t *testing.T, b backend, w testutil.Wrapper) (db *sql.DB, ch reports, logs *testutil.LockedBuffer, watched *sql.DB) {
	t.Helper()
	dsn := b.dsn(t)
	ch = make(reports, 100)
	logs = &testutil.LockedBuffer{}
	name := fmt.Sprintf("sqlwatch-%s-%d", b.name, registered.Add(1))
	if err := driver.RegisterByName(name, b.inner,
		driver.WithThreshold(leak.KindTx, 300*time.Millisecond),
		driver.WithThreshold(leak.KindConn, 300*time.Millisecond),
		driver.WithThreshold(leak.KindRows, 300*time.Millisecond),
		driver.WithInterval(50*time.Millisecond),
		driver.WithReportFunc(func(r leak.Report) { ch <- r }),
		driver.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		driver.WithDBName(name),
	); err != nil {
		t.Fatal(err)
	}
	watched, err := sql.Open(name, dsn) // never used itself: its Driver is
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watched.Close() }) // after the wrapper's pool
	w.Driver, w.DSN = watched.Driver(), dsn
	c, err := w.Open()
	if err != nil {
		t.Fatal(err)
	}
	db = sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, ch, logs, watched
}

// useAndIdle runs correct code on db (a statement, a committed tx, rows
// read and closed) and leaves its conns idle past the conn threshold.
func useAndIdle(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT 2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT 3").Scan(&n); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // over twice the conn threshold
}

// TestWrapperHidingReturns: a wrapper outside sqlwatch whose conn has no
// IsValid (uptrace's otelsql v0.3.2) hides every return of a conn to the
// pool. Correct code must not get a conn leak report for the conns idle
// in the pool; the log says once why conn reports wait, naming the
// wrapper; a leaked tx is still reported at its line.
func TestWrapperHidingReturns(t *testing.T) {
	for _, viaConnector := range []bool{false, true} {
		t.Run(fmt.Sprintf("connector=%v", viaConnector), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				db, ch, logs, watched := openWrapped(t, b, testutil.Wrapper{Connector: viaConnector})
				useAndIdle(t, db)
				ch.none(t, leak.KindConn)
				checkNoConnListed(t, watched)
				out := logs.String()
				if n := strings.Count(out, hiddenWarning); n != 1 {
					t.Errorf("the reason is logged %d times; want once:\n%s", n, out)
				}
				if !strings.Contains(out, "opened_by=github.com/sqlwatch/sqlwatch/internal/testutil.wrapConnector.Connect") {
					t.Errorf("the reason does not name the wrapper:\n%s", out)
				}
				if strings.Contains(out, "connection checked out for") {
					t.Errorf("a conn leak was logged:\n%s", out)
				}

				ctx := context.Background()
				line := nextLine()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if _, err := tx.ExecContext(ctx, "SELECT 4"); err != nil {
					t.Fatal(err)
				}
				checkOrigin(t, ch.wait(t, leak.KindTx, false), line)
			})
		})
	}
}

// TestWrapperPassingReturns: a wrapper outside sqlwatch that passes
// IsValid on (XSAM's otelsql) keeps conn leak reports: correct code is
// silent and logs no reason, and a *sql.Conn never closed is reported at
// its line.
func TestWrapperPassingReturns(t *testing.T) {
	for _, viaConnector := range []bool{false, true} {
		t.Run(fmt.Sprintf("connector=%v", viaConnector), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				db, ch, logs, _ := openWrapped(t, b, testutil.Wrapper{Connector: viaConnector, PassValid: true})
				useAndIdle(t, db)
				ch.none(t, leak.KindConn)

				ctx := context.Background()
				line := nextLine()
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.ExecContext(ctx, "SELECT 5"); err != nil {
					t.Fatal(err)
				}
				checkOrigin(t, ch.wait(t, leak.KindConn, false), line)
				if out := logs.String(); strings.Contains(out, hiddenWarning) {
					t.Errorf("the hidden-returns reason was logged for a wrapper that passes IsValid on:\n%s", out)
				}
			})
		})
	}
}

// TestLeakedConnFirstCheckout: in a pool that no conn has left yet (no
// Ping, no statement before), a *sql.Conn never closed is reported: only
// a wrapper outside sqlwatch makes conn reports wait for a return.
func TestLeakedConnFirstCheckout(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		dsn := b.dsn(t)
		ch := make(reports, 100)
		name := fmt.Sprintf("sqlwatch-%s-%d", b.name, registered.Add(1))
		if err := driver.RegisterByName(name, b.inner,
			driver.WithThreshold(leak.KindConn, 300*time.Millisecond),
			driver.WithInterval(50*time.Millisecond),
			driver.WithReportFunc(func(r leak.Report) { ch <- r }),
			driver.WithLogger(discard),
		); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open(name, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx := context.Background()
		line := nextLine()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT 6"); err != nil {
			t.Fatal(err)
		}
		checkOrigin(t, ch.wait(t, leak.KindConn, false), line)
	})
}

// checkNoConnListed fails if the live page lists a conn checkout of the
// pools named like watched (the wrapper's connector opens a pool of its
// own under the same name, which leak.Snapshot(watched) would not see).
func checkNoConnListed(t *testing.T, watched *sql.DB) {
	t.Helper()
	st, err := leak.StatsOf(watched)
	if err != nil {
		t.Fatal(err)
	}
	page := httptest.NewRecorder()
	leak.Handler().ServeHTTP(page, httptest.NewRequest("GET", "/?format=json", nil))
	var listed struct {
		Pools []struct {
			DBName    string         `json:"db_name"`
			Open      map[string]int `json:"open"`
			Resources []struct {
				Kind string `json:"kind"`
			} `json:"resources"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(page.Body.Bytes(), &listed); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, p := range listed.Pools {
		if p.DBName != st.DBName {
			continue
		}
		seen++
		if p.Open["conn"] != 0 {
			t.Errorf("the page counts %d conns checked out in pool %q", p.Open["conn"], p.DBName)
		}
		for _, r := range p.Resources {
			if r.Kind == "conn" {
				t.Errorf("the page lists a conn checkout in pool %q", p.DBName)
			}
		}
	}
	if seen == 0 {
		t.Errorf("the page has no pool %q", st.DBName)
	}
}
