package pgxwatch_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

type reqKey struct{}

// requestAttrs is the WithContextAttrs function of these tests: the
// request id the context carries, if any.
func requestAttrs(ctx context.Context) []slog.Attr {
	if id, ok := ctx.Value(reqKey{}).(string); ok {
		return []slog.Attr{slog.String("request_id", id)}
	}
	return nil
}

func attr(r leak.Report, key string) string {
	for _, a := range r.Attrs {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestContextAttrsAcquire: a checkout carries the attributes of the
// context given to Acquire, in its leak report and its release line; the
// same conn acquired again under a context without them carries none
// (not the earlier checkout's); a tx carries its Begin's.
func TestContextAttrsAcquire(t *testing.T) {
	s := open(t, false, func(c *pgxpool.Config) { c.MaxConns = 1 }, driver.WithContextAttrs(requestAttrs))
	ctx := context.WithValue(context.Background(), reqKey{}, "req-a")

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.ch.wait(leak.KindConn, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := attr(r, "request_id"); got != "req-a" {
		t.Errorf("leak report request_id %q; want req-a (attrs %v)", got, r.Attrs)
	}
	conn.Release()
	rel, err := s.ch.wait(leak.KindConn, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := attr(rel, "request_id"); got != "req-a" {
		t.Errorf("release line request_id %q; want req-a", got)
	}

	conn, err = s.pool.Acquire(context.Background()) // the same conn: MaxConns 1
	if err != nil {
		t.Fatal(err)
	}
	r, err = s.ch.wait(leak.KindConn, false)
	conn.Release()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Attrs) != 0 {
		t.Errorf("a checkout under a context without attributes carries %v (stale?)", r.Attrs)
	}
	if _, err := s.ch.wait(leak.KindConn, true); err != nil {
		t.Fatal(err)
	}

	tx, err := s.pool.Begin(context.WithValue(context.Background(), reqKey{}, "req-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	r, err = s.ch.wait(leak.KindTx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := attr(r, "request_id"); got != "req-b" {
		t.Errorf("tx leak report request_id %q; want req-b", got)
	}
}
