package pgxwatch_test

import (
	"context"
	"testing"

	"github.com/sqlwatch/sqlwatch/leak"
)

// A scenario leaks one resource on a pool (instrumented unless plain) and
// returns an error unless its leak report, naming the test's line, and
// then its release line arrive. Each runs twice: instrumented it must
// pass, plain it must fail, so that the check depends on sqlwatch.
type scenario func(t *testing.T, plain bool) error

var scenarios = []struct {
	name string
	f    scenario
}{
	{"acquire", leakedAcquire},
	{"begin", leakedBegin},
	{"pool_query", unclosedPoolRows},
	{"conn_query", unclosedConnRows},
}

func TestLeaks(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if err := sc.f(t, false); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLeaksNeedInstrumentation(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if err := sc.f(t, true); err == nil {
				t.Error("the scenario passed without sqlwatch")
			}
		})
	}
}

func leakedAcquire(t *testing.T, plain bool) error {
	s := open(t, plain, nil)
	ctx := context.Background()
	at := nextLine()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	r, err := s.ch.wait(leak.KindConn, false)
	if err != nil {
		conn.Release()
		return err
	}
	if err := checkOrigin(r, at); err != nil {
		return err
	}
	if r.Statements != 1 || r.LastQuery != "SELECT 1" {
		t.Errorf("statements %d, last query %q; want 1, SELECT 1", r.Statements, r.LastQuery)
	}
	conn.Release()
	rel, err := s.ch.wait(leak.KindConn, true)
	if err != nil {
		return err
	}
	return checkOrigin(rel, at)
}

func leakedBegin(t *testing.T, plain bool) error {
	s := open(t, plain, nil)
	ctx := context.Background()
	at := nextLine()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 2"); err != nil {
		t.Fatal(err)
	}
	r, err := s.ch.wait(leak.KindTx, false)
	if err != nil {
		tx.Rollback(ctx)
		return err
	}
	if err := checkOrigin(r, at); err != nil {
		return err
	}
	if r.LastQuery != "SELECT 2" {
		t.Errorf("last query %q; want SELECT 2", r.LastQuery)
	}
	if err := s.ch.none(200e6); err != nil { // the conn under the tx is not reported on its own
		return err
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	rel, err := s.ch.wait(leak.KindTx, true)
	if err != nil {
		return err
	}
	if err := checkOrigin(rel, at); err != nil {
		return err
	}
	if n := len(s.w.Snapshot()); n != 0 {
		t.Errorf("%d resources open after the rollback", n)
	}
	return nil
}

func unclosedPoolRows(t *testing.T, plain bool) error {
	s := open(t, plain, nil)
	ctx := context.Background()
	at := nextLine()
	rows, err := s.pool.Query(ctx, "SELECT generate_series(1, 3)")
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	r, err := s.ch.wait(leak.KindRows, false)
	if err != nil {
		rows.Close()
		return err
	}
	if err := checkOrigin(r, at); err != nil {
		return err
	}
	if r.LastQuery != "SELECT generate_series(1, 3)" {
		t.Errorf("last query %q", r.LastQuery)
	}
	if err := s.ch.none(200e6); err != nil { // nor the conn the rows hold
		return err
	}
	rows.Close()
	rel, err := s.ch.wait(leak.KindRows, true)
	if err != nil {
		return err
	}
	if err := checkOrigin(rel, at); err != nil {
		return err
	}
	if st := s.pool.Stat(); st.AcquiredConns() != 0 {
		t.Errorf("%d conns acquired after rows.Close", st.AcquiredConns())
	}
	return nil
}

func unclosedConnRows(t *testing.T, plain bool) error {
	s := open(t, plain, nil)
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	at := nextLine()
	rows, err := conn.Query(ctx, "SELECT 42")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.ch.wait(leak.KindRows, false)
	if err != nil {
		rows.Close()
		return err
	}
	if err := checkOrigin(r, at); err != nil {
		return err
	}
	rows.Close()
	if _, err := s.ch.wait(leak.KindRows, true); err != nil {
		return err
	}
	return nil
}
