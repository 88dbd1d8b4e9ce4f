package driver_test

import (
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/lib/pq"
	_ "modernc.org/sqlite"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// backend is one real database and driver the tests run against.
type backend struct {
	name  string // test name: sqlite, mysql, postgres (lib/pq), pgx
	inner string // registered name of the real driver
	env   string // environment variable holding the DSN ("" for sqlite)
}

var backends = []backend{
	{"sqlite", "sqlite", ""},
	{"mysql", "mysql", "SQLWATCH_MYSQL_DSN"},
	{"postgres", "postgres", "SQLWATCH_POSTGRES_DSN"},
	{"pgx", "pgx", "SQLWATCH_POSTGRES_DSN"},
}

// dsn returns the backend's DSN, skipping the test when it is not
// configured — or failing it when SQLWATCH_REQUIRE_DB=1.
func (b backend) dsn(t testing.TB) string {
	t.Helper()
	if b.env == "" {
		return "file:" + filepath.Join(t.TempDir(), "test.db") + "?_pragma=busy_timeout(5000)"
	}
	dsn := os.Getenv(b.env)
	if dsn == "" {
		if os.Getenv("SQLWATCH_REQUIRE_DB") == "1" {
			t.Fatalf("%s is not set and SQLWATCH_REQUIRE_DB=1", b.env)
		}
		t.Skipf("%s is not set; set it to run against %s", b.env, b.name)
	}
	return dsn
}

// eachBackend runs f as a subtest on every backend.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

var (
	registered atomic.Int64
	discard    = slog.New(slog.DiscardHandler)
)

// reports collects the reports of one pool.
type reports chan leak.Report

// open registers a fresh wrapped driver for b (options are per
// registration) and opens a pool on it with short thresholds. The pool is
// closed when the test ends; its reports arrive on the returned channel.
func open(t *testing.T, b backend, opts ...driver.Option) (*sql.DB, reports) {
	t.Helper()
	dsn := b.dsn(t)
	ch := make(reports, 100)
	name := fmt.Sprintf("sqlwatch-%s-%d", b.name, registered.Add(1))
	all := append([]driver.Option{
		driver.WithThreshold(leak.KindTx, 300*time.Millisecond),
		driver.WithThreshold(leak.KindConn, 300*time.Millisecond),
		driver.WithThreshold(leak.KindRows, 300*time.Millisecond),
		driver.WithThreshold(leak.KindStmt, 300*time.Millisecond),
		driver.WithInterval(50 * time.Millisecond),
		driver.WithReportFunc(func(r leak.Report) { ch <- r }),
		driver.WithLogger(discard),
	}, opts...)
	if err := driver.RegisterByName(name, b.inner, all...); err != nil {
		t.Fatal(err)
	}
	db := openAndPing(t, b, name, dsn)
	return db, ch
}

// wait returns the first report of kind k (a release when released is
// true), failing the test after a few seconds.
func (ch reports) wait(t *testing.T, k leak.Kind, released bool) leak.Report {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r := <-ch:
			if r.Kind == k && r.Released == released {
				return r
			}
		case <-timeout:
			t.Fatalf("no %s report (released=%v) within 5s", k, released)
		}
	}
}

// none fails if a report of kind k arrived (or arrives within a few scan
// intervals).
func (ch reports) none(t *testing.T, k leak.Kind) {
	t.Helper()
	timeout := time.After(200 * time.Millisecond)
	for {
		select {
		case r := <-ch:
			if r.Kind == k {
				t.Errorf("unexpected %s report: %+v", k, r)
			}
		case <-timeout:
			return
		}
	}
}

// nextLine returns "driver/FILE.go:LINE" of the line after its call, as a
// report's origin spells it.
func nextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s/%s:%d", filepath.Base(filepath.Dir(file)), filepath.Base(file), line+1)
}

// checkOrigin fails unless the report names the expected line and a test
// function.
func checkOrigin(t *testing.T, r leak.Report, want string) {
	t.Helper()
	if r.Origin != want {
		t.Errorf("origin: got %q; want %q (stack %v)", r.Origin, want, r.Stack)
	}
	if !strings.Contains(r.Func, "driver_test.") {
		t.Errorf("func: got %q; want a function of driver_test", r.Func)
	}
}

// shortLockWait is the statement that makes b's session give up waiting
// for a lock quickly, so that a lock conflict fails in the test's time.
func shortLockWait(b backend) string {
	return map[string]string{
		"sqlite":   "PRAGMA busy_timeout = 50",
		"mysql":    "SET SESSION innodb_lock_wait_timeout = 1",
		"postgres": "SET lock_timeout = '100ms'",
		"pgx":      "SET lock_timeout = '100ms'",
	}[b.name]
}

// openAndPing opens a pool on a registered name, closed when the test
// ends, and pings it.
func openAndPing(t *testing.T, b backend, name, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(name, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("ping %s: %v", b.name, err)
	}
	return db
}
