package pgxwatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/pgxwatch"
)

// dsn returns SQLWATCH_POSTGRES_DSN, skipping the test when it is not set
// (failing it when SQLWATCH_REQUIRE_DB=1).
func dsn(t testing.TB) string {
	t.Helper()
	d := os.Getenv("SQLWATCH_POSTGRES_DSN")
	if d == "" {
		if os.Getenv("SQLWATCH_REQUIRE_DB") == "1" {
			t.Fatal("SQLWATCH_POSTGRES_DSN is not set and SQLWATCH_REQUIRE_DB=1")
		}
		t.Skip("SQLWATCH_POSTGRES_DSN is not set; set it to run against PostgreSQL")
	}
	return d
}

var discard = slog.New(slog.DiscardHandler)

// reports collects the reports of one watch.
type reports chan leak.Report

// setup is one test's pool.
type setup struct {
	pool *pgxpool.Pool
	w    *pgxwatch.Watch // nil when not instrumented
	ch   reports
}

// open makes a pool on the test database, instrumented with short
// thresholds unless plain, closed when the test ends. edit, if not nil,
// changes the config before it is instrumented.
func open(t testing.TB, plain bool, edit func(*pgxpool.Config), opts ...driver.Option) setup {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	s := setup{ch: make(reports, 100)}
	if !plain {
		all := append([]driver.Option{
			driver.WithThreshold(leak.KindTx, 300*time.Millisecond),
			driver.WithThreshold(leak.KindConn, 300*time.Millisecond),
			driver.WithThreshold(leak.KindRows, 300*time.Millisecond),
			driver.WithInterval(50 * time.Millisecond),
			driver.WithReportFunc(func(r leak.Report) { s.ch <- r }),
			driver.WithLogger(discard),
		}, opts...)
		s.w, err = pgxwatch.Instrument(cfg, all...)
		if err != nil {
			t.Fatal(err)
		}
	}
	s.pool, err = pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.pool.Close()
		if s.w != nil {
			s.w.Close()
		}
	})
	if err := s.pool.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return s
}

// wait returns the first report of kind k (a release when released is
// true), or an error after a few seconds.
func (ch reports) wait(k leak.Kind, released bool) (leak.Report, error) {
	timeout := time.After(3 * time.Second)
	for {
		select {
		case r := <-ch:
			if r.Kind == k && r.Released == released {
				return r, nil
			}
		case <-timeout:
			return leak.Report{}, fmt.Errorf("no %s report (released=%v) within 3s", k, released)
		}
	}
}

// none returns an error if any report arrives within d.
func (ch reports) none(d time.Duration) error {
	select {
	case r := <-ch:
		return fmt.Errorf("unexpected report: %s released=%v origin %s age %v query %q", r.Kind, r.Released, r.Origin, r.Age, r.LastQuery)
	case <-time.After(d):
		return nil
	}
}

// nextLine returns "pgxwatch/FILE.go:LINE" of the line after its call, as
// a report's origin spells it.
func nextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s/%s:%d", filepath.Base(filepath.Dir(file)), filepath.Base(file), line+1)
}

// checkOrigin returns an error unless r names want and a test function.
func checkOrigin(r leak.Report, want string) error {
	if r.Origin != want {
		return fmt.Errorf("origin: got %q; want %q (stack %v)", r.Origin, want, r.Stack)
	}
	if !strings.Contains(r.Func, "pgxwatch_test.") {
		return fmt.Errorf("func: got %q; want a function of pgxwatch_test", r.Func)
	}
	return nil
}
