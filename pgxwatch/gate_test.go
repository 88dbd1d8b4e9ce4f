package pgxwatch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sqlwatch/sqlwatch/leak"
)

type fakeT struct{ errs []string }

func (f *fakeT) Error(args ...any) { f.errs = append(f.errs, fmt.Sprint(args...)) }

// TestGate: leak.Check without leak.Pool covers a pgxwatch pool: it fails
// on a conn acquired and not released, and passes once it is.
func TestGate(t *testing.T) {
	s := open(t, false, nil)
	ctx := context.Background()
	ft := &fakeT{}
	check := leak.Check(ft, leak.RetryFor(0))
	at := nextLine()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check()
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], at) {
		t.Errorf("gate errors %q; want one naming %s", ft.errs, at)
	}
	conn.Release()
	ft2 := &fakeT{}
	check2 := leak.Check(ft2, leak.RetryFor(0))
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	check2()
	if len(ft2.errs) != 0 {
		t.Errorf("gate errors %q on a correct QueryRow", ft2.errs)
	}
}
