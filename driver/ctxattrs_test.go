package driver_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

type requestIDKey struct{}

// requestAttrs is a WithContextAttrs function as a user writes one: the
// request id when the context carries one, nil otherwise.
func requestAttrs(ctx context.Context) []slog.Attr {
	id, ok := ctx.Value(requestIDKey{}).(string)
	if !ok {
		return nil
	}
	return []slog.Attr{slog.String("request_id", id), slog.String("route", "/orders")}
}

// syncBuffer is a log sink safe for the watchdog's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func attr(attrs []slog.Attr, key string) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// errT is the gate's TestingT, keeping the failure.
type errT struct{ msg string }

func (e *errT) Error(args ...any) { e.msg += fmt.Sprint(args...) }

// TestContextAttrsInLeakReports (issue 18, item 4): a tx begun under a
// context carrying a request id is reported with it — the report, the
// release line (both as Report.Attrs and in the log), the live page and
// the gate; a tx begun without one carries nothing.
func TestContextAttrsInLeakReports(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var log syncBuffer
		db, ch := open(t, b, driver.WithContextAttrs(requestAttrs),
			driver.WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
		ctx := context.WithValue(context.Background(), requestIDKey{}, "req-7f3a")
		gt := &errT{}
		done := leak.Check(gt, leak.Pool(db), leak.RetryFor(0)) // the baseline: before the tx
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		r := ch.wait(t, leak.KindTx, false)
		if got := attr(r.Attrs, "request_id"); got != "req-7f3a" || attr(r.Attrs, "route") != "/orders" {
			t.Errorf("leak report's attrs %v; want request_id=req-7f3a route=/orders", r.Attrs)
		}

		// The live page, JSON and HTML.
		for _, accept := range []string{"application/json", "text/html"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept", accept)
			w := httptest.NewRecorder()
			leak.Handler().ServeHTTP(w, req)
			body, _ := io.ReadAll(w.Body)
			want := `"request_id":"req-7f3a"`
			if accept == "text/html" {
				want = "request_id=req-7f3a"
			}
			if !strings.Contains(strings.ReplaceAll(string(body), `": "`, `":"`), want) {
				t.Errorf("the page (%s) lacks %s:\n%s", accept, want, body)
			}
		}

		// The gate.
		done()
		if !strings.Contains(gt.msg, `context: request_id="req-7f3a" route="/orders"`) {
			t.Errorf("the gate's failure lacks the context:\n%s", gt.msg)
		}

		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		rel := ch.wait(t, leak.KindTx, true)
		if attr(rel.Attrs, "request_id") != "req-7f3a" {
			t.Errorf("release's attrs %v; want request_id=req-7f3a", rel.Attrs)
		}
		out := log.String()
		if n := strings.Count(out, `"request_id":"req-7f3a"`); n != 2 {
			t.Errorf("the log names the request %d times; want 2 (the report and the release):\n%s", n, out)
		}

		// A tx begun without a request id carries nothing.
		tx, err = db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		r = ch.wait(t, leak.KindTx, false)
		if r.Attrs != nil {
			t.Errorf("a tx begun without a request id has attrs %v", r.Attrs)
		}
		tx.Rollback()
		ch.wait(t, leak.KindTx, true)
	})
}

// TestContextAttrsOff: without the option a report has no attrs, even
// under a context that carries a request id: a tx's, a conn checkout's.
func TestContextAttrsOff(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b)
		ctx := context.WithValue(context.Background(), requestIDKey{}, "req-7f3a")
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := ch.wait(t, leak.KindTx, false); r.Attrs != nil {
			t.Errorf("attrs %v without the option", r.Attrs)
		}
		tx.Rollback()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		if r := ch.wait(t, leak.KindConn, false); r.Attrs != nil {
			t.Errorf("conn checkout's attrs %v without the option", r.Attrs)
		}
		conn.Close()
	})
}

// TestContextAttrsInMisuse: a tx_bypass report names the request that
// began the held tx (There.Attrs), in the callback's value and the log.
func TestContextAttrsInMisuse(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var log syncBuffer
		db, ch := openMisuse(t, b, driver.WithContextAttrs(requestAttrs),
			driver.WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
		tbl := table(t, db, b)
		ctx := context.WithValue(context.Background(), requestIDKey{}, "req-bypass")
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 2").Scan(&n); err != nil {
			t.Fatal(err)
		}
		m := ch.wait(t, leak.MisuseTxBypass)
		if attr(m.There.Attrs, "request_id") != "req-bypass" {
			t.Errorf("tx_bypass's There.Attrs %v; want request_id=req-bypass", m.There.Attrs)
		}
		if !strings.Contains(log.String(), `"tx_context":{"request_id":"req-bypass"`) {
			t.Errorf("the misuse log line lacks tx_context:\n%s", log.String())
		}
	})
}

// TestContextAttrsRows: rows queried on the pool carry their query's
// context's attributes; rows of a tx carry the tx's (taken at BeginTx,
// not again for the query).
func TestContextAttrsRows(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b, driver.WithContextAttrs(requestAttrs))
		rows, err := db.QueryContext(context.WithValue(context.Background(), requestIDKey{}, "req-rows"), "SELECT 3")
		if err != nil {
			t.Fatal(err)
		}
		if r := ch.wait(t, leak.KindRows, false); attr(r.Attrs, "request_id") != "req-rows" {
			t.Errorf("rows' attrs %v; want request_id=req-rows", r.Attrs)
		}
		rows.Close()
		ch.wait(t, leak.KindRows, true)

		tx, err := db.BeginTx(context.WithValue(context.Background(), requestIDKey{}, "req-tx"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		rows, err = tx.QueryContext(context.WithValue(context.Background(), requestIDKey{}, "req-other"), "SELECT 4")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if r := ch.wait(t, leak.KindRows, false); attr(r.Attrs, "request_id") != "req-tx" {
			t.Errorf("a tx's rows' attrs %v; want the tx's request_id=req-tx", r.Attrs)
		}
	})
}

// countingAttrs is requestAttrs counting its calls by request id.
type countingAttrs struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingAttrs) f(ctx context.Context) []slog.Attr {
	id, _ := ctx.Value(requestIDKey{}).(string)
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[id]++
	c.mu.Unlock()
	return requestAttrs(ctx)
}

func (c *countingAttrs) n(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

func withID(id string) context.Context {
	return context.WithValue(context.Background(), requestIDKey{}, id)
}

// TestContextAttrsConnCheckout: a conn checked out with db.Conn and used
// outside a tx carries the attributes of its first statement's context,
// taken once (a later statement under another request does not change
// them), in its leak report, the live page, the gate and the release
// line (Report.Attrs and the log).
func TestContextAttrsConnCheckout(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var log syncBuffer
		ca := &countingAttrs{}
		db, ch := open(t, b, driver.WithContextAttrs(ca.f),
			driver.WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
		gt := &errT{}
		done := leak.Check(gt, leak.Pool(db), leak.RetryFor(0))
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := conn.ExecContext(withID("req-conn"), "SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := conn.ExecContext(withID("req-later"), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		r := ch.wait(t, leak.KindConn, false)
		if attr(r.Attrs, "request_id") != "req-conn" || attr(r.Attrs, "route") != "/orders" {
			t.Errorf("conn leak report's attrs %v; want request_id=req-conn route=/orders", r.Attrs)
		}
		if n, m := ca.n("req-conn"), ca.n("req-later"); n != 1 || m != 0 {
			t.Errorf("f called %d times for the checkout's first request, %d for the later one; want 1 and 0 (once per checkout)", n, m)
		}
		for _, accept := range []string{"application/json", "text/html"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept", accept)
			w := httptest.NewRecorder()
			leak.Handler().ServeHTTP(w, req)
			body, _ := io.ReadAll(w.Body)
			want := `"request_id":"req-conn"`
			if accept == "text/html" {
				want = "request_id=req-conn"
			}
			if !strings.Contains(strings.ReplaceAll(string(body), `": "`, `":"`), want) {
				t.Errorf("the page (%s) lacks %s:\n%s", accept, want, body)
			}
		}
		done()
		if !strings.Contains(gt.msg, `context: request_id="req-conn" route="/orders"`) {
			t.Errorf("the gate's failure lacks the checkout's context:\n%s", gt.msg)
		}
		if err := conn.Close(); err != nil {
			t.Fatal(err)
		}
		rel := ch.wait(t, leak.KindConn, true)
		if attr(rel.Attrs, "request_id") != "req-conn" {
			t.Errorf("release's attrs %v; want request_id=req-conn", rel.Attrs)
		}
		if out := log.String(); strings.Count(out, `"request_id":"req-conn"`) != 2 || strings.Contains(out, "req-later") {
			t.Errorf("the log should name req-conn twice (the report and the release), req-later never:\n%s", out)
		}
	})
}

// TestContextAttrsConnReused: a pooled conn taken again by a later
// checkout carries that checkout's attributes, never the previous
// one's: none when its statements' context has none.
func TestContextAttrsConnReused(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b, driver.WithContextAttrs(requestAttrs))
		db.SetMaxOpenConns(1) // every checkout takes the same conn
		leakConn := func(ctx context.Context) leak.Report {
			t.Helper()
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			r := ch.wait(t, leak.KindConn, false)
			conn.Close()
			ch.wait(t, leak.KindConn, true)
			return r
		}
		if r := leakConn(withID("req-a")); attr(r.Attrs, "request_id") != "req-a" {
			t.Errorf("first checkout's attrs %v; want request_id=req-a", r.Attrs)
		}
		if r := leakConn(context.Background()); r.Attrs != nil {
			t.Errorf("a later checkout of the same conn, without a request id, has attrs %v; want none", r.Attrs)
		}
		// A pooled statement in between, then a checkout under another request.
		if _, err := db.ExecContext(withID("req-pool"), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		if r := leakConn(withID("req-b")); attr(r.Attrs, "request_id") != "req-b" {
			t.Errorf("third checkout's attrs %v; want request_id=req-b", r.Attrs)
		}
		if n := db.Stats().OpenConnections; n != 1 {
			t.Fatalf("%d open conns; want 1: the checkouts did not reuse the conn", n)
		}
	})
}

// TestContextAttrsOncePerCheckout: f is called once per checkout, tx and
// result set outside a tx, never per statement; a checkout's first call
// shares its attributes with the tx or rows it opens.
func TestContextAttrsOncePerCheckout(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ca := &countingAttrs{}
		db, _ := open(t, b, driver.WithContextAttrs(ca.f))
		ctx := withID("req-1")
		for range 3 {
			if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(ctx, "SELECT 1").Scan(new(int)); err != nil {
				t.Fatal(err)
			}
		}
		if n := ca.n("req-1"); n != 6 {
			t.Errorf("6 pooled statements: f called %d times; want 6 (one per checkout, shared with its rows)", n)
		}
		ctx = withID("req-2")
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRowContext(ctx, "SELECT 1").Scan(new(int)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if n := ca.n("req-2"); n != 1 {
			t.Errorf("a tx of 6 statements: f called %d times; want 1 (the tx and its checkout)", n)
		}
		ctx = withID("req-3")
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for range 3 {
			if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(new(int)); err != nil {
			t.Fatal(err)
		}
		if n := ca.n("req-3"); n != 2 {
			t.Errorf("a db.Conn with 3 execs and a query: f called %d times; want 2 (the checkout, the rows)", n)
		}
	})
}

// TestContextAttrsPoolAlertHolders: a pool alert's holders carry their
// checkouts' attributes, in PoolAlert.Holders and the log line.
func TestContextAttrsPoolAlertHolders(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, _ := open(t, b, driver.WithContextAttrs(requestAttrs))
		db.SetMaxOpenConns(1)
		warm(t, db, 1)
		w := watch(t, db)
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(withID("req-holder"), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		qctx, cancel := context.WithTimeout(withID("req-waiter"), 10*time.Second)
		defer cancel()
		waited := make(chan error, 1)
		go func() { waited <- db.QueryRowContext(qctx, "SELECT 1").Scan(new(int)) }()
		a := w.next(t)
		if len(a.Holders) != 1 || attr(a.Holders[0].Attrs, "request_id") != "req-holder" || a.Holders[0].Context["request_id"] != "req-holder" {
			t.Errorf("holders %+v; want one with request_id=req-holder", a.Holders)
		}
		if l := w.lines(); len(l) == 0 || !strings.Contains(l[0], `"context":{"request_id":"req-holder","route":"/orders"}`) {
			t.Errorf("the alert's log line lacks the holder's context:\n%s", strings.Join(l, "\n"))
		}
		conn.Close()
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
	})
}

// TestContextAttrsPanicAtCheckout: a panic in f at a checkout's first
// statement is recovered and counted, once per checkout; the statements
// run and the checkout carries nothing.
func TestContextAttrsPanicAtCheckout(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b, driver.WithContextAttrs(func(ctx context.Context) []slog.Attr {
			if ctx.Value(requestIDKey{}) != nil {
				panic("boom")
			}
			return nil
		}))
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := conn.ExecContext(withID("req-panic"), "SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
		if r := ch.wait(t, leak.KindConn, false); r.Attrs != nil {
			t.Errorf("attrs %v after a panic in f", r.Attrs)
		}
		if n := driver.TrackerOf(db).Stats().Panics; n != 1 {
			t.Errorf("panics %d; want 1 (one checkout)", n)
		}
		conn.Close()
	})
}

// misuseLog opens a pool watched for misuse with WithContextAttrs (when
// on) and a JSON log.
func misuseLog(t *testing.T, b backend, on bool) (*sql.DB, misuses, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	opts := []driver.Option{driver.WithLogger(slog.New(slog.NewJSONHandler(log, nil)))}
	if on {
		opts = append(opts, driver.WithContextAttrs(requestAttrs))
	}
	db, ch := openMisuse(t, b, opts...)
	return db, ch, log
}

// checkHere fails unless m's statement side carries request id here
// (none when here is "") and its other side there, in the value and the
// log (here_context, and the other side's group).
func checkHere(t *testing.T, m leak.Misuse, log *syncBuffer, here, side, there string) {
	t.Helper()
	if got := attr(m.Here.Attrs, "request_id"); got != here || (here == "" && m.Here.Attrs != nil) {
		t.Errorf("%s: Here.Attrs %v; want request_id=%q", m.Kind, m.Here.Attrs, here)
	}
	if got := attr(m.There.Attrs, "request_id"); got != there {
		t.Errorf("%s: There.Attrs %v; want request_id=%q", m.Kind, m.There.Attrs, there)
	}
	out := log.String()
	if here != "" && !strings.Contains(out, `"here_context":{"request_id":"`+here+`"`) {
		t.Errorf("%s: the log lacks here_context %s:\n%s", m.Kind, here, out)
	}
	if here == "" && strings.Contains(out, "here_context") {
		t.Errorf("%s: here_context without attrs:\n%s", m.Kind, out)
	}
	if there != "" && !strings.Contains(out, `"`+side+`_context":{"request_id":"`+there+`"`) {
		t.Errorf("%s: the log lacks %s_context %s:\n%s", m.Kind, side, there, out)
	}
}

// TestContextAttrsMisuseHere: the statement that shows a misuse carries
// its own context's attributes (Misuse.Here.Attrs, logged as
// here_context), beside the other side's; none without the option.
func TestContextAttrsMisuseHere(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, on := range []bool{true, false} {
			want := func(id string) string {
				if on {
					return id
				}
				return ""
			}
			t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
				t.Run("tx_bypass", func(t *testing.T) {
					db, ch, log := misuseLog(t, b, on)
					tbl := table(t, db, b)
					tx, err := db.BeginTx(withID("req-tx"), nil)
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Rollback()
					if err := tx.QueryRowContext(withID("req-tx"), "SELECT n FROM "+tbl+" WHERE id = 1").Scan(new(int)); err != nil {
						t.Fatal(err)
					}
					if err := db.QueryRowContext(withID("req-here"), "SELECT n FROM "+tbl+" WHERE id = 2").Scan(new(int)); err != nil {
						t.Fatal(err)
					}
					checkHere(t, ch.wait(t, leak.MisuseTxBypass), log, want("req-here"), "tx", want("req-tx"))
				})
				t.Run("open_rows", func(t *testing.T) {
					db, ch, log := misuseLog(t, b, on)
					tbl := table(t, db, b)
					tx, err := db.BeginTx(withID("req-rows"), nil)
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Rollback()
					rows, err := tx.QueryContext(withID("req-rows"), "SELECT id FROM "+tbl+" ORDER BY id")
					if err != nil {
						t.Fatal(err)
					}
					rows.Next()
					tx.ExecContext(withID("req-over"), "UPDATE "+tbl+" SET n = 1 WHERE id = 2") // the driver's answer does not matter
					rows.Close()
					checkHere(t, ch.wait(t, leak.MisuseOpenRows), log, want("req-over"), "rows", want("req-rows"))
				})
				t.Run("lock_conflict", func(t *testing.T) {
					db, ch, log := misuseLog(t, b, on)
					tbl := table(t, db, b)
					tx1, err := db.BeginTx(withID("req-holder"), nil)
					if err != nil {
						t.Fatal(err)
					}
					defer tx1.Rollback()
					if _, err := tx1.ExecContext(context.Background(), "UPDATE "+tbl+" SET n = 10 WHERE id = 1"); err != nil {
						t.Fatal(err)
					}
					conn, err := db.Conn(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					if _, err := conn.ExecContext(context.Background(), shortLockWait(b)); err != nil {
						t.Fatal(err)
					}
					tx2, err := conn.BeginTx(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					defer tx2.Rollback()
					if _, err := tx2.ExecContext(withID("req-fail"), "UPDATE "+tbl+" SET n = 20 WHERE id = 1"); err == nil {
						t.Fatal("the second update did not fail")
					}
					m := ch.wait(t, leak.MisuseLockConflict)
					checkHere(t, m, log, want("req-fail"), "", "")
					if len(m.Holders) == 0 || attr(m.Holders[0].Attrs, "request_id") != want("req-holder") {
						t.Errorf("holders %+v; want the first with request_id=%q", m.Holders, want("req-holder"))
					}
				})
				t.Run("sql_tx_leak", func(t *testing.T) {
					db, ch, log := misuseLog(t, b, on)
					tbl := table(t, db, b)
					db.SetMaxOpenConns(1)
					conn, err := db.Conn(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					for _, q := range []string{"BEGIN", "UPDATE " + tbl + " SET n = 1 WHERE id = 1"} {
						if _, err := conn.ExecContext(withID("req-begin"), q); err != nil {
							t.Fatal(err)
						}
					}
					conn.Close()
					if _, err := db.ExecContext(withID("req-reuse"), "UPDATE "+tbl+" SET n = 2 WHERE id = 2"); err != nil {
						t.Fatal(err)
					}
					// The release: its checkout's attributes, on both sides.
					m := ch.wait(t, leak.MisuseSQLTxLeak)
					checkHere(t, m, log, want("req-begin"), "tx", want("req-begin"))
					if b.name != "pgx" { // pgx refuses the conn: no reuse
						m = ch.wait(t, leak.MisuseSQLTxLeak)
						if m.State != leak.SQLTxReused || attr(m.Here.Attrs, "request_id") != want("req-reuse") || attr(m.There.Attrs, "request_id") != want("req-begin") {
							t.Errorf("reused: state %s, Here.Attrs %v, There.Attrs %v; want request_id %q, %q", m.State, m.Here.Attrs, m.There.Attrs, want("req-reuse"), want("req-begin"))
						}
					}
					db.ExecContext(context.Background(), "ROLLBACK")
				})
				t.Run("conn_killed", func(t *testing.T) {
					kill := map[string][2]string{
						"mysql":    {"SELECT CONNECTION_ID()", "KILL %d"},
						"postgres": {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
						"pgx":      {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
					}[b.name]
					if kill[0] == "" {
						t.Skip("no server session to kill on SQLite")
					}
					db, ch, log := misuseLog(t, b, on)
					conn, err := db.Conn(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					var id int64
					if err := conn.QueryRowContext(withID("req-held"), kill[0]).Scan(&id); err != nil {
						t.Fatal(err)
					}
					if _, err := db.ExecContext(context.Background(), fmt.Sprintf(kill[1], id)); err != nil {
						t.Fatal(err)
					}
					time.Sleep(100 * time.Millisecond)
					if _, err := conn.ExecContext(withID("req-dead"), "SELECT 1"); err == nil {
						t.Fatal("a statement on the killed session succeeded")
					}
					// The other side is the checkout: its attributes are
					// its first statement's.
					checkHere(t, ch.wait(t, leak.MisuseConnKilled), log, want("req-dead"), "holder", want("req-held"))
				})
			})
		}
	})
}
