package driver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

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
// under a context that carries a request id.
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
