package leak_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// fakeT records what the gate reports.
type fakeT struct {
	mu      sync.Mutex
	errs    []string
	helpers int
}

func (f *fakeT) Error(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprint(args...))
}

func (f *fakeT) Helper() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.helpers++
}

// failure returns the one error reported, failing t when there is not
// exactly one.
func (f *fakeT) failure(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) != 1 {
		t.Fatalf("got %d errors; want 1: %q", len(f.errs), f.errs)
	}
	return f.errs[0]
}

// passed fails t when anything was reported.
func (f *fakeT) passed(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) != 0 {
		t.Fatalf("got errors; want none:\n%s", strings.Join(f.errs, "\n"))
	}
}

// openPool opens a pool through sqlwatch over the in-memory fake driver;
// the test closes it.
func openPool(t testing.TB, name string) *sql.DB {
	t.Helper()
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(),
		driver.WithDBName(name), driver.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// nextLine returns "leak/gate_test.go:N" for the line after the call.
func nextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("leak/%s:%d", file[strings.LastIndexByte(file, '/')+1:], line+1)
}

func mustContain(t *testing.T, msg string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("the message lacks %q:\n%s", w, msg)
		}
	}
}

// A test that leaves a tx open fails, naming the line of its BeginTx.
func TestCheckReportsLeakedTx(t *testing.T) {
	db := openPool(t, "gate-tx")
	ft := &fakeT{}
	done := leak.Check(ft, leak.Pool(db), leak.RetryFor(20*time.Millisecond))
	origin := nextLine()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO items (name) VALUES (?)", "widget"); err != nil {
		t.Fatal(err)
	}
	done()
	msg := ft.failure(t)
	t.Logf("the gate's failure:\n%s", msg)
	if first := strings.SplitN(msg, "\n", 2)[0]; first != "found 1 unexpected open database resource opened through sqlwatch:" {
		t.Errorf("first line: got %q", first)
	}
	mustContain(t, msg,
		"\n[tx] open for ",
		", begun at "+origin+" (leak_test.TestCheckReportsLeakedTx), goroutine ",
		"\n    statements: 1; last query: INSERT INTO items (name) VALUES (?)",
		"\n    github.com/sqlwatch/sqlwatch/leak_test.TestCheckReportsLeakedTx\n        "+origin+"\n",
	)
	if strings.Contains(msg, "[conn]") {
		t.Errorf("the conn under the tx is listed too:\n%s", msg)
	}
	if strings.Contains(msg, "widget") {
		t.Errorf("an argument value reached the message:\n%s", msg)
	}
	if ft.helpers == 0 {
		t.Error("the gate did not call Helper")
	}
}

// A test that closes everything passes, at once.
func TestCheckPassesCleanTest(t *testing.T) {
	db := openPool(t, "gate-clean")
	ft := &fakeT{}
	done := leak.Check(ft, leak.Pool(db))
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec("INSERT INTO items (name) VALUES (?)", "widget")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT ROWS 3")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	rows.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	start := time.Now()
	done()
	ft.passed(t)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a clean check took %v; want no wait", d)
	}
}

// Without Pool, Check covers every pool, including one opened after it;
// what was open when Check was called is not reported.
func TestCheckAllPoolsSinceStart(t *testing.T) {
	old := openPool(t, "gate-since-old")
	before, err := old.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Rollback()

	ft := &fakeT{}
	done := leak.Check(ft, leak.RetryFor(10*time.Millisecond))
	db := openPool(t, "gate-since-new")
	origin := nextLine()
	rows, err := db.Query("SELECT ROWS 2")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	done()
	msg := ft.failure(t)
	mustContain(t, msg, "found 1 unexpected", "[rows] open for ", "queried at "+origin, `on pool "gate-since-new"`,
		"\n    query: SELECT ROWS 2")

	ft = &fakeT{}
	done = leak.Check(ft, leak.RetryFor(10*time.Millisecond))
	done()
	ft.passed(t)
}

// VerifyNone lists everything open on the pool, whenever it was opened;
// every kind has its own wording.
func TestVerifyNoneKinds(t *testing.T) {
	db := openPool(t, "gate-kinds")
	ctx := context.Background()
	ft := &fakeT{}
	leak.VerifyNone(ft, leak.Pool(db), leak.RetryFor(0))
	ft.passed(t)

	// A checkout starts where the conn is taken, new or not.
	connAt := nextLine()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "UPDATE items SET n = n + 1"); err != nil {
		t.Fatal(err)
	}
	stmtAt := nextLine()
	stmt, err := db.Prepare("SELECT ROWS 1")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	rowsAt := nextLine()
	rows, err := db.Query("SELECT ROWS 5")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()

	ft = &fakeT{}
	leak.VerifyNone(ft, leak.Pool(db), leak.RetryFor(0))
	msg := ft.failure(t)
	t.Logf("%s", msg)
	mustContain(t, msg, "found 3 unexpected open database resources opened through sqlwatch:",
		"[conn] open for ", "checked out at "+connAt, "\n    statements: 1; last query: UPDATE items SET n = n + 1",
		"[stmt] open for ", "prepared at "+stmtAt,
		"[rows] open for ", "queried at "+rowsAt, "\n    query: SELECT ROWS 5")
	// Oldest first.
	if c, s, r := strings.Index(msg, "[conn]"), strings.Index(msg, "[stmt]"), strings.Index(msg, "[rows]"); !(c < s && s < r) {
		t.Errorf("not oldest first:\n%s", msg)
	}

	rows.Close()
	stmt.Close()
	conn.Close()
	ft = &fakeT{}
	leak.VerifyNone(ft, leak.Pool(db))
	ft.passed(t)
}

// The retry window lets database/sql roll back a tx whose context was
// canceled, on its own goroutine, before the check looks.
func TestRetryWindowCanceledTx(t *testing.T) {
	db := openPool(t, "gate-cancel")
	for i := 0; i < 20; i++ {
		ft := &fakeT{}
		done := leak.Check(ft, leak.Pool(db))
		ctx, cancel := context.WithCancel(context.Background())
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx.Exec("INSERT INTO items (name) VALUES (?)", "x")
		cancel()
		done()
		ft.passed(t)
	}
}

// A resource closed a little later passes within the window and fails
// without it.
func TestRetryFor(t *testing.T) {
	db := openPool(t, "gate-retry")

	ft := &fakeT{}
	done := leak.Check(ft, leak.Pool(db), leak.RetryFor(5*time.Second))
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		tx.Rollback()
	}()
	done()
	ft.passed(t)

	ft = &fakeT{}
	done = leak.Check(ft, leak.Pool(db), leak.RetryFor(0))
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done()
	tx.Rollback()
	mustContain(t, ft.failure(t), "[tx] open for ")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("RetryFor(0) took %v; want a single look", d)
	}

	ft = &fakeT{}
	done = leak.Check(ft, leak.Pool(db), leak.RetryFor(100*time.Millisecond))
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	done()
	tx.Rollback()
	ft.failure(t)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("RetryFor(100ms) gave up after %v", d)
	}
}

// leakTx begins a tx and forgets it; IgnoreFunc names it.
func leakTx(db *sql.DB) (*sql.Tx, error) { return db.Begin() }

func TestIgnoreOriginAndFunc(t *testing.T) {
	db := openPool(t, "gate-ignore")
	f := func(want bool, opts ...leak.Option) {
		t.Helper()
		ft := &fakeT{}
		leak.VerifyNone(ft, append(opts, leak.Pool(db), leak.RetryFor(0))...)
		if got := len(ft.errs) > 0; got != want {
			t.Errorf("failed = %v; want %v: %q", got, want, ft.errs)
		}
	}
	origin := nextLine()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	f(true)
	f(false, leak.IgnoreOrigin(origin))
	f(false, leak.IgnoreOrigin("other.go:1", "leak/gate_test.go:"))
	f(true, leak.IgnoreOrigin("other.go:1"))
	f(false, leak.IgnoreFunc("github.com/sqlwatch/sqlwatch/leak_test.TestIgnoreOriginAndFunc"))
	f(true, leak.IgnoreFunc("leak_test.TestIgnoreOriginAndFunc")) // names are fully qualified

	tx2, err := leakTx(db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	f(true, leak.IgnoreFunc("github.com/sqlwatch/sqlwatch/leak_test.leakTx"))
	f(false, leak.IgnoreFunc("github.com/sqlwatch/sqlwatch/leak_test.leakTx"), leak.IgnoreOrigin(origin))
}

// Pool limits the check to the pools named, keeps checking a pool after
// DB.Close, and rejects a pool not opened through sqlwatch.
func TestPool(t *testing.T) {
	a, b := openPool(t, "gate-pool-a"), openPool(t, "gate-pool-b")
	ft := &fakeT{}
	doneA := leak.Check(ft, leak.Pool(a), leak.RetryFor(0))
	fb := &fakeT{}
	doneB := leak.Check(fb, leak.Pool(b), leak.RetryFor(0))
	fab := &fakeT{}
	doneAB := leak.Check(fab, leak.Pool(a), leak.Pool(b), leak.Pool(a), leak.RetryFor(0))
	tx, err := b.Begin()
	if err != nil {
		t.Fatal(err)
	}
	doneA()
	ft.passed(t)
	doneB()
	if msg := fb.failure(t); strings.Contains(msg, "on pool") {
		t.Errorf("one pool checked, yet the message names it:\n%s", msg)
	}
	doneAB()
	mustContain(t, fab.failure(t), "found 1 unexpected", `on pool "gate-pool-b"`)

	// After DB.Close sqlwatch forgets the pool, but Pool still reaches it.
	b.Close()
	for _, tr := range track.Trackers() {
		if tr.DBName() == "gate-pool-b" {
			t.Fatal("a closed pool is still listed")
		}
	}
	fb = &fakeT{}
	leak.VerifyNone(fb, leak.Pool(b), leak.RetryFor(0))
	mustContain(t, fb.failure(t), "[tx] open for ")
	tx.Rollback()
	fb = &fakeT{}
	leak.VerifyNone(fb, leak.Pool(b), leak.RetryFor(0))
	fb.passed(t)
}

// Bad values and combinations are reported as test errors with clear
// text, and nothing is checked.
func TestInvalidOptions(t *testing.T) {
	db := openPool(t, "gate-invalid")
	tx, err := db.Begin() // would fail a valid check
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	plain := fakedb.New(fakedb.Full).OpenDB()
	defer plain.Close()
	f := func(want string, opts ...leak.Option) {
		t.Helper()
		ft := &fakeT{}
		done := leak.Check(ft, opts...)
		msg := ft.failure(t)
		if !strings.HasPrefix(msg, "sqlwatch: leak.Check: invalid options:") || !strings.Contains(msg, want) {
			t.Errorf("got %q; want it to say %q", msg, want)
		}
		done()
		ft.failure(t) // the returned func adds nothing
		ft = &fakeT{}
		leak.VerifyNone(ft, append(opts, leak.Pool(db))...)
		if msg := ft.failure(t); !strings.HasPrefix(msg, "sqlwatch: leak.VerifyNone: invalid options:") || !strings.Contains(msg, want) {
			t.Errorf("VerifyNone: got %q; want it to say %q", msg, want)
		}
	}
	f("leak.Pool: nil *sql.DB", leak.Pool(nil))
	f("leak.Pool: the *sql.DB (driver *fakedb.fullDriver) was not opened through sqlwatch", leak.Pool(plain))
	f("leak.RetryFor(-1s): negative duration", leak.RetryFor(-time.Second))
	f("leak.RetryFor given twice: 1s, then 2s", leak.RetryFor(time.Second), leak.RetryFor(2*time.Second))
	f("leak.IgnoreOrigin: no origin given", leak.IgnoreOrigin())
	f("leak.IgnoreOrigin: an empty origin would match every resource", leak.IgnoreOrigin("a.go", ""))
	f("leak.IgnoreFunc: no function name given", leak.IgnoreFunc())
	f("leak.IgnoreFunc: an empty function name would match every resource", leak.IgnoreFunc(""))
	f("nil leak.Option", nil)
	f("leak.Pool: nil *sql.DB\n\tleak.RetryFor(-1ns): negative duration", leak.Pool(nil), leak.RetryFor(-1))
}

// Parallel tests with a pool each see only their own resources.
func TestCheckParallelOwnPools(t *testing.T) {
	fts := make([]*fakeT, 4)
	t.Run("group", func(t *testing.T) {
		for i := range fts {
			fts[i] = &fakeT{}
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				db := openPool(t, fmt.Sprintf("gate-parallel-%d", i))
				done := leak.Check(fts[i], leak.Pool(db), leak.RetryFor(50*time.Millisecond))
				tx, err := db.Begin()
				if err != nil {
					t.Error(err)
					return
				}
				tx.Exec("INSERT INTO items (name) VALUES (?)", i)
				if i != 2 { // test 2 leaks
					tx.Commit()
				}
				done()
				tx.Rollback()
			})
		}
	})
	for i, ft := range fts {
		if i == 2 {
			ft.failure(t)
		} else {
			ft.passed(t)
		}
	}
}

// VerifyTestMain runs the tests in a child process (this test binary,
// running only TestVerifyTestMainChild).
func TestVerifyTestMain(t *testing.T) {
	f := func(mode string, wantCode int, wants ...string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyTestMainChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SQLWATCH_GATE_CHILD="+mode)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatal(err)
			}
			code = ee.ExitCode()
		}
		if code != wantCode {
			t.Errorf("%s: exit code %d; want %d\nstderr:\n%s", mode, code, wantCode, stderr.String())
		}
		for _, w := range wants {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%s: stderr lacks %q:\n%s", mode, w, stderr.String())
			}
		}
		if wantCode == 0 && stderr.Len() > 0 {
			t.Errorf("%s: stderr: %s", mode, stderr.String())
		}
	}
	f("leak", 1, "sqlwatch: errors on successful test run: found 1 unexpected open database resource opened through sqlwatch:",
		"[tx] open for ", "begun at leak/gate_test.go:", "(leak_test.TestVerifyTestMainChild.func1)")
	f("clean", 0)
	f("ignored", 0)
	f("failed", 3)
	f("invalid", 1, "sqlwatch: leak.VerifyTestMain: invalid options:\n\tleak.RetryFor(-1s): negative duration")
}

// runFunc is a TestingM.
type runFunc func() int

func (f runFunc) Run() int { return f() }

// TestVerifyTestMainChild is the child process of TestVerifyTestMain.
func TestVerifyTestMainChild(t *testing.T) {
	mode := os.Getenv("SQLWATCH_GATE_CHILD")
	if mode == "" {
		t.Skip("run by TestVerifyTestMain")
	}
	db := openPool(t, "gate-testmain")
	var opts []leak.Option
	switch mode {
	case "ignored":
		opts = append(opts, leak.IgnoreOrigin("leak/gate_test.go:"))
	case "invalid":
		opts = append(opts, leak.RetryFor(-time.Second))
	}
	leak.VerifyTestMain(runFunc(func() int {
		if mode == "invalid" {
			fmt.Fprintln(os.Stderr, "Run called despite invalid options")
		}
		tx, err := db.Begin()
		if err != nil {
			panic(err)
		}
		if mode == "clean" {
			tx.Rollback()
		}
		if mode == "failed" {
			return 3
		}
		return 0
	}), append(opts, leak.RetryFor(10*time.Millisecond))...)
}

// TestCheckSeesAReopenedResource: a conn open when Check ran, returned,
// then checked out again and leaked reuses its tracking record; the gate
// still tells the new checkout from the old one.
func TestCheckSeesAReopenedResource(t *testing.T) {
	db := openPool(t, "gate-reopen")
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	old, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	ft := &fakeT{}
	done := leak.Check(ft, leak.Pool(db), leak.RetryFor(20*time.Millisecond))
	old.Close()
	leaked, err := db.Conn(ctx) // the same driver conn: one open at most
	if err != nil {
		t.Fatal(err)
	}
	defer leaked.Close()
	if _, err := leaked.ExecContext(ctx, "SELECT 2"); err != nil {
		t.Fatal(err)
	}
	done()
	mustContain(t, ft.failure(t), "[conn]", "last query: SELECT 2")
}
