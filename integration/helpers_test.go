package integration

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// dsn returns the DSN in env, skipping the test when it is not set, or
// failing it when SQLWATCH_REQUIRE_DB=1.
func dsn(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("SQLWATCH_REQUIRE_DB") == "1" {
			t.Fatalf("%s is not set and SQLWATCH_REQUIRE_DB=1", env)
		}
		t.Skipf("%s is not set", env)
	}
	return v
}

const (
	mysqlEnv    = "SQLWATCH_MYSQL_DSN"
	postgresEnv = "SQLWATCH_POSTGRES_DSN"
)

var seq atomic.Int32

// name returns a fresh driver name with base as its start.
func name(base string) string { return fmt.Sprintf("%s-%d", base, seq.Add(1)) }

// sink collects a pool's reports and misuses.
type sink struct {
	reports chan leak.Report
	misuses chan leak.Misuse
}

func newSink() *sink {
	return &sink{reports: make(chan leak.Report, 100), misuses: make(chan leak.Misuse, 100)}
}

// opts are the options of a test pool: short thresholds, reports into s.
func (s *sink) opts(extra ...driver.Option) []driver.Option {
	return append([]driver.Option{
		driver.WithThreshold(leak.KindTx, 200*time.Millisecond),
		driver.WithThreshold(leak.KindConn, 200*time.Millisecond),
		driver.WithThreshold(leak.KindRows, 200*time.Millisecond),
		driver.WithInterval(25 * time.Millisecond),
		driver.WithReportFunc(func(r leak.Report) { s.reports <- r }),
		driver.WithMisuseFunc(func(m leak.Misuse) { s.misuses <- m }),
		driver.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}, extra...)
}

// leak returns the first leak report of kind k.
func (s *sink) leak(t *testing.T, k leak.Kind) leak.Report {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r := <-s.reports:
			if r.Kind == k && !r.Released {
				return r
			}
		case <-timeout:
			t.Fatalf("no %s leak reported", k)
		}
	}
}

// misuse returns the first misuse of kind.
func (s *sink) misuse(t *testing.T, kind string) leak.Misuse {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-s.misuses:
			if m.Kind == kind {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s misuse reported", kind)
		}
	}
}

// here returns "file.go:N" of its caller's line plus delta, as reports
// name it (the last two path elements).
func here(delta int) string {
	_, file, line, _ := runtime.Caller(1)
	return filepath.Base(filepath.Dir(file)) + "/" + filepath.Base(file) + ":" + fmt.Sprint(line+delta)
}

// sameLine fails t unless origin names want.
func sameLine(t *testing.T, what, origin, want string) {
	t.Helper()
	if !strings.HasSuffix(origin, want) {
		t.Errorf("%s origin %q; want %q", what, origin, want)
	}
}
