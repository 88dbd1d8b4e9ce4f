package driver_test

import (
	"bytes"
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ngrok/sqlmw"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

func TestRegistrationErrors(t *testing.T) {
	fd := fakedb.New(fakedb.Full)
	f := func(err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("got %v; want %v", err, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "sqlwatch: ") {
			t.Errorf("error %q lacks the sqlwatch: prefix", err)
		}
	}
	f(driver.Register("", fd.Driver()), driver.ErrEmptyName)
	f(driver.Register("sqlwatch-nil", nil), driver.ErrNilDriver)
	f(driver.Register("sqlite", fd.Driver()), driver.ErrDuplicateName)
	f(driver.RegisterByName("sqlwatch-unknown", "no-such-driver"), driver.ErrUnknownDriver)
	f(driver.RegisterByName("", "sqlite"), driver.ErrEmptyName)
	f(driver.RegisterByName("sqlwatch-x", ""), driver.ErrEmptyName)
	_, err := driver.NewConnector(nil)
	f(err, driver.ErrNilDriver)

	f(driver.Register("sqlwatch-dup", fd.Driver()), nil)
	f(driver.Register("sqlwatch-dup", fd.Driver()), driver.ErrDuplicateName)
	f(driver.RegisterByName("sqlwatch-dup", "sqlite"), driver.ErrDuplicateName)
	// Wrapping a wrapped driver by name works too.
	f(driver.RegisterByName("sqlwatch-dup-again", "sqlwatch-dup"), nil)
}

func TestInvalidOptions(t *testing.T) {
	fd := fakedb.New(fakedb.Full)
	f := func(opt driver.Option) {
		t.Helper()
		if _, err := driver.NewConnector(fd.Connector(), opt); !errors.Is(err, driver.ErrInvalidOption) {
			t.Errorf("got %v; want ErrInvalidOption", err)
		}
	}
	f(driver.WithThreshold(leak.KindTx, -time.Second))
	f(driver.WithThreshold(leak.Kind(9), time.Second))
	f(driver.WithInterval(0))
	f(driver.WithInterval(-time.Second))
	f(driver.WithReportLimit(0, 1))
	f(driver.WithReportLimit(1, -1))
	f(driver.WithQueryLimit(0))
	f(driver.WithLogger(nil))
	f(driver.WithInterceptor(nil))
	f(driver.WithDBName(""))
	if err := driver.Register("sqlwatch-badopt", fd.Driver(), driver.WithInterval(-1)); !errors.Is(err, driver.ErrInvalidOption) {
		t.Errorf("Register: got %v; want ErrInvalidOption", err)
	}
}

// TestPoolNames: each pool is named, never with a password.
func TestPoolNames(t *testing.T) {
	f := func(inner, dsn, want string) {
		t.Helper()
		name := fmt.Sprintf("sqlwatch-name-%d", registered.Add(1))
		if err := driver.RegisterByName(name, inner, quiet()); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open(name, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		got := driver.TrackerOf(db).DBName()
		if w, ok := strings.CutPrefix(want, "*"); ok && strings.HasSuffix(got, w) {
			want = got
		}
		if want == "" {
			want = name
		}
		if got != want {
			t.Errorf("%s %q: got %q; want %q", inner, dsn, got, want)
		}
		if strings.Contains(strings.ToLower(got), "cret") { // s3cret, se/cret, ...Secret4
			t.Errorf("%s %q: the name %q holds the password", inner, dsn, got)
		}
	}
	f("mysql", "app:s3cret@tcp(db.internal:3306)/orders?parseTime=true", "db.internal:3306/orders")
	f("mysql", "app:s3c@ret@tcp(db.internal:3306)/orders", "db.internal:3306/orders")
	f("mysql", "app:s3cret@unix(/run/mysqld/mysqld.sock)/orders", "/run/mysqld/mysqld.sock/orders")
	f("postgres", "postgres://app:s3cret@db.internal:5432/orders?sslmode=disable", "db.internal:5432/orders")
	f("postgres", "host=db.internal port=5432 user=app password=s3cret dbname=orders", "db.internal:5432/orders")
	f("pgx", "postgresql://app:s3cret@db.internal/orders", "db.internal/orders")
	f("sqlite", "file:/var/lib/app/orders.db?_pragma=busy_timeout(5000)", "orders.db")
	f("sqlite", "/var/lib/app/orders.db", "orders.db")
	f("sqlite", ":memory:", "*:memory:")
	// Passwords the grammar does not place in a host, port, database or
	// file name never reach the name.
	f("postgres", "host=h user=myadmin@myserver password=AzSecret3 dbname=postgres", "h/postgres")
	f("pgx", "host=h user=myadmin@myserver password=AzSecret3 dbname=postgres", "h/postgres")
	f("postgres", "user=app host=/var/run/postgresql password=SockSecret4 dbname=orders", "/var/run/postgresql/orders")
	f("sqlite", "file:x.db?_auth_pass=S@secret6", "x.db")
	f("pgx", "postgres://user:se/cret@host", "") // the driver's name
	f("postgres", "Server=h;Database=d;Uid=u;Password=p@secret7;", "")

	// A chosen name wins.
	fd := fakedb.New(fakedb.Full)
	c, err := driver.NewConnector(fd.Connector(), driver.WithDBName("orders-primary"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if got := driver.TrackerOf(db).DBName(); got != "orders-primary" {
		t.Errorf("got %q; want orders-primary", got)
	}
	c2, _ := driver.NewConnector(fd.Connector(), quiet())
	db2 := sql.OpenDB(c2)
	defer db2.Close()
	if got := driver.TrackerOf(db2).DBName(); got != "fakedb" {
		t.Errorf("connector name: got %q; want fakedb", got)
	}
}

// TestEachPoolTrackedOnItsOwn: two sql.Open on one registered name have
// two trackers; DB.Close stops each and closes the inner connector.
func TestEachPoolTrackedOnItsOwn(t *testing.T) {
	fd := fakedb.New(fakedb.Full)
	name := fmt.Sprintf("sqlwatch-pools-%d", registered.Add(1))
	if err := driver.Register(name, fd.Driver(), quiet()); err != nil {
		t.Fatal(err)
	}
	a, _ := sql.Open(name, "a")
	b, _ := sql.Open(name, "b")
	ta, tb := driver.TrackerOf(a), driver.TrackerOf(b)
	if ta == nil || tb == nil || ta == tb {
		t.Fatalf("trackers: %p %p; want two distinct", ta, tb)
	}
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if ta.OpenCount(leak.KindTx) != 1 || tb.OpenCount(leak.KindTx) != 0 {
		t.Errorf("open tx: a=%d b=%d; want 1, 0", ta.OpenCount(leak.KindTx), tb.OpenCount(leak.KindTx))
	}
	tx.Rollback()
	a.Close()
	b.Close()
	if n := fd.ConnectorCloses(); n != 2 {
		t.Errorf("inner connector closes: got %d; want 2", n)
	}
	for _, tr := range track.Trackers() {
		if tr == ta || tr == tb {
			t.Error("a closed pool's tracker is still listed")
		}
	}
	if driver.TrackerOf(fd.OpenDB()) != nil {
		t.Error("TrackerOf a pool not opened through sqlwatch: want nil")
	}
}

// TestTrackingFollowsDatabaseSQL: tx, conn, rows and stmt are open exactly
// while database/sql holds them, including a Tx on a *sql.Conn (the conn
// stays checked out after the tx ends) and rows that hold their conn.
func TestTrackingFollowsDatabaseSQL(t *testing.T) {
	for _, p := range []fakedb.Profile{fakedb.Full, fakedb.Legacy, fakedb.ResetterOnly} {
		t.Run(p.String(), func(t *testing.T) {
			fd := fakedb.New(p)
			c, err := driver.NewConnector(fd.Connector(), quiet())
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			defer db.Close()
			tr := driver.TrackerOf(db)
			ctx := context.Background()
			counts := func() string {
				return fmt.Sprintf("tx=%d conn=%d rows=%d stmt=%d", tr.OpenCount(leak.KindTx), tr.OpenCount(leak.KindConn),
					tr.OpenCount(leak.KindRows), tr.OpenCount(leak.KindStmt))
			}
			want := func(w string) {
				t.Helper()
				if got := counts(); got != w {
					t.Errorf("got %s; want %s", got, w)
				}
			}
			if _, err := db.ExecContext(ctx, "INSERT x"); err != nil {
				t.Fatal(err)
			}
			want("tx=0 conn=0 rows=0 stmt=0")
			rows, err := db.QueryContext(ctx, "SELECT ROWS 2")
			if err != nil {
				t.Fatal(err)
			}
			if p == fakedb.Legacy {
				// Without Queryer, database/sql prepares a statement that
				// lives as long as the rows.
				want("tx=0 conn=1 rows=1 stmt=1")
			} else {
				want("tx=0 conn=1 rows=1 stmt=0")
			}
			rows.Close()
			want("tx=0 conn=0 rows=0 stmt=0")

			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			want("tx=1 conn=1 rows=0 stmt=0")
			tx.Commit()
			want("tx=0 conn=1 rows=0 stmt=0")
			conn.Close()
			want("tx=0 conn=0 rows=0 stmt=0")

			st, err := db.PrepareContext(ctx, "SELECT ARGS")
			if err != nil {
				t.Fatal(err)
			}
			want("tx=0 conn=0 rows=0 stmt=1")
			st.Close()
			want("tx=0 conn=0 rows=0 stmt=0")
		})
	}
}

// TestJSONReport checks the report contract through slog's JSON handler,
// end to end through database/sql.
func TestJSONReport(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	fd := fakedb.New(fakedb.Full)
	c, err := driver.NewConnector(fd.Connector(), driver.WithLogger(logger), driver.WithDBName("shop"),
		driver.WithThreshold(leak.KindTx, 50*time.Millisecond), driver.WithQueryLimit(12))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	line := nextLine()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE accounts SET secret = ?", "hunter2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return buf.Len() > 0 })
	tx.Rollback()
	db.Close() // flushes the release line
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2:\n%s", len(lines), buf.String())
	}
	var warn, info map[string]any
	json.Unmarshal([]byte(lines[0]), &warn)
	json.Unmarshal([]byte(lines[1]), &info)
	msg, _ := warn["msg"].(string)
	if !strings.HasPrefix(msg, "sqlwatch: transaction open for ") || !strings.HasSuffix(msg, "begun at "+line) {
		t.Errorf("msg: got %q", msg)
	}
	for key, want := range map[string]any{"level": "WARN", "kind": "tx", "db_name": "shop", "origin": line, "threshold": "50ms",
		"statements": float64(1), "last_query": "UPDATE accou…"} {
		if warn[key] != want {
			t.Errorf("%s: got %v; want %v", key, warn[key], want)
		}
	}
	if st, _ := warn["stack"].([]any); len(st) == 0 || !strings.Contains(st[0].(string), line) {
		t.Errorf("stack: got %v", warn["stack"])
	}
	if f, _ := warn["func"].(string); !strings.HasSuffix(f, "driver_test.TestJSONReport") {
		t.Errorf("func: got %q", f)
	}
	if strings.Contains(buf.String(), "hunter2") {
		t.Error("an argument value reached the log")
	}
	if info["level"] != "INFO" || info["kind"] != "tx" || info["origin"] != line || info["db_name"] != "shop" || info["held"] == nil {
		t.Errorf("release line: got %v", info)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// countingInterceptor counts the calls sqlwatch routes through it.
type countingInterceptor struct {
	sqlmw.NullInterceptor
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingInterceptor) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *countingInterceptor) ConnBeginTx(ctx context.Context, conn sqldriver.ConnBeginTx, o sqldriver.TxOptions) (context.Context, sqldriver.Tx, error) {
	c.count("begin")
	return c.NullInterceptor.ConnBeginTx(context.WithValue(ctx, ctxKey{}, "from begin"), conn, o)
}

func (c *countingInterceptor) TxCommit(ctx context.Context, tx sqldriver.Tx) error {
	if ctx.Value(ctxKey{}) == "from begin" {
		c.count("commit with begin's context")
	}
	return c.NullInterceptor.TxCommit(ctx, tx)
}

func (c *countingInterceptor) ConnExecContext(ctx context.Context, conn sqldriver.ExecerContext, q string, a []sqldriver.NamedValue) (sqldriver.Result, error) {
	c.count("exec")
	return c.NullInterceptor.ConnExecContext(ctx, conn, q, a)
}

func (c *countingInterceptor) ResultRowsAffected(r sqldriver.Result) (int64, error) {
	c.count("rows affected")
	return c.NullInterceptor.ResultRowsAffected(r)
}

func (c *countingInterceptor) RowsClose(ctx context.Context, r sqldriver.Rows) error {
	c.count("rows close")
	return c.NullInterceptor.RowsClose(ctx, r)
}

func (c *countingInterceptor) ConnectorConnect(ctx context.Context, cn sqldriver.Connector) (sqldriver.Conn, error) {
	c.count("connect")
	return c.NullInterceptor.ConnectorConnect(ctx, cn)
}

type ctxKey struct{}

func TestInterceptorIsCalled(t *testing.T) {
	ic := &countingInterceptor{calls: map[string]int{}}
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), quiet(), driver.WithInterceptor(ic))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	res, err := db.Exec("INSERT x", 1)
	if err != nil {
		t.Fatal(err)
	}
	res.RowsAffected()
	rows, _ := db.Query("SELECT ROWS 1")
	rows.Close()
	tx, _ := db.Begin()
	tx.Commit()
	want := map[string]int{"connect": 1, "exec": 1, "rows affected": 1, "rows close": 1, "begin": 1, "commit with begin's context": 1}
	for k, v := range want {
		if ic.calls[k] != v {
			t.Errorf("%s: got %d calls; want %d", k, ic.calls[k], v)
		}
	}
}

// TestDriverOpenUsesThePoolsTracker: a conn opened through db.Driver() is
// tracked by the pool's tracker, which DB.Close stops; no tracker of the
// driver's own is left behind.
func TestDriverOpenUsesThePoolsTracker(t *testing.T) {
	name := fmt.Sprintf("sqlwatch-driveropen-%d", registered.Add(1))
	if err := driver.Register(name, fakedb.New(fakedb.Full).Driver(), driver.WithLogger(discard)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(name, "")
	if err != nil {
		t.Fatal(err)
	}
	before := len(track.Trackers())
	c, err := db.Driver().Open("")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(track.Trackers()); got != before {
		t.Errorf("db.Driver().Open made %d more trackers; want none", got-before)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, tr := range track.Trackers() {
		if strings.HasPrefix(tr.DBName(), name) {
			t.Errorf("tracker %q still registered after DB.Close", tr.DBName())
		}
	}
}

// panicCloseInterceptor closes the driver's statement, then panics.
type panicCloseInterceptor struct{ sqlmw.NullInterceptor }

func (panicCloseInterceptor) StmtClose(ctx context.Context, s sqldriver.Stmt) error {
	s.Close()
	panic("StmtClose interceptor panics")
}

// A StmtClose interceptor that panics: the panic reaches the application
// unchanged, and the statement, closed as far as database/sql knows, is
// no longer tracked, while its conn stays open in the pool.
func TestStmtCloseInterceptorPanics(t *testing.T) {
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), quiet(), driver.WithInterceptor(panicCloseInterceptor{}))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	db.SetMaxOpenConns(1)
	tr := driver.TrackerOf(db)
	st, err := db.Prepare("SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	if n := tr.OpenCount(leak.KindStmt); n != 1 {
		t.Fatalf("%d stmt tracked after Prepare; want 1", n)
	}
	func() {
		defer func() {
			if r := recover(); r != "StmtClose interceptor panics" {
				t.Errorf("recovered %v; want the interceptor's panic", r)
			}
		}()
		st.Close()
	}()
	if n := db.Stats().OpenConnections; n != 1 {
		t.Fatalf("%d conns open; want the stmt's conn, still open", n)
	}
	if n := tr.OpenCount(leak.KindStmt); n != 0 {
		t.Errorf("%d stmt still tracked after Stmt.Close panicked; want 0 (database/sql counts it closed)", n)
	}
	// The pool goes on, and closing the conn later does not trip on the
	// statement.
	if _, err := db.Exec("INSERT x", 1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range track.Kinds {
		if n := tr.OpenCount(k); n != 0 {
			t.Errorf("%d %s tracked after DB.Close", n, k)
		}
	}
}
