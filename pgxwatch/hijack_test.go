package pgxwatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/leak"
)

// TestHijacked: a conn hijacked out of the pool and kept (a LISTEN loop)
// is not reported as held once Hijacked is called; its later rows are
// still tracked. Without the call it is reported (pgx gives no sign of a
// hijack): the test's second half shows why the call is needed.
func TestHijacked(t *testing.T) {
	s := open(t, false, nil)
	ctx := context.Background()
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Hijack()
	s.w.Hijacked(conn)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "LISTEN sqlwatch_hijack"); err != nil {
		t.Fatal(err)
	}
	if err := s.ch.none(700 * time.Millisecond); err != nil { // over twice the threshold
		t.Fatalf("a hijacked conn, told: %v", err)
	}
	at := nextLine()
	rows, err := conn.Query(ctx, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.ch.wait(leak.KindRows, false)
	rows.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkOrigin(r, at); err != nil {
		t.Error(err)
	}

	at = nextLine()
	c2, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn2 := c2.Hijack() // not told
	defer conn2.Close(ctx)
	r, err = s.ch.wait(leak.KindConn, false)
	if err != nil {
		t.Fatalf("an untold hijack: %v", err)
	}
	if err := checkOrigin(r, at); err != nil {
		t.Error(err)
	}
}
