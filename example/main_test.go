package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/testutil"
)

// testScenario runs one scenario in-process through run and checks its
// report.
func testScenario(t *testing.T, sc scenario, extra ...string) {
	t.Helper()
	drv := "sqlite"
	if i := slices.Index(extra, "-driver"); i >= 0 {
		drv = extra[i+1]
	}
	if slices.Contains(sc.notOn, drv) {
		t.Skipf("scenario %s does not run on %s", sc.name, drv)
	}
	args := append([]string{"-scenario", sc.name, "-addr", "127.0.0.1:0", "-leak-threshold", "200ms"}, extra...)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run %q = %d, want 0\nstdout:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
	}
	if sc.alert {
		checkAlert(t, sc, stdout.Bytes())
		return
	}
	if sc.misuse != "" {
		var m struct{ Kind, Origin string }
		if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
			t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout.String())
		}
		if m.Kind != sc.misuse || !strings.HasPrefix(m.Origin, "example/handlers.go:") {
			t.Errorf("got %s at %s; want %s in example/handlers.go", m.Kind, m.Origin, sc.misuse)
		}
		t.Logf("%s", bytes.TrimSpace(stdout.Bytes()))
		return
	}
	var rep reportJSON
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout.String())
	}
	if rep.Kind != sc.kind.String() {
		t.Errorf("kind = %q, want %q", rep.Kind, sc.kind)
	}
	if !strings.HasPrefix(rep.Origin, "example/handlers.go:") {
		t.Errorf("origin = %q, want example/handlers.go:LINE", rep.Origin)
	}
	if rep.DBName == "" || rep.Threshold != "200ms" || len(rep.Stack) == 0 || !strings.Contains(rep.Func, ".(*server).") {
		t.Errorf("incomplete report: %+v", rep)
	}
	t.Logf("%s", bytes.TrimSpace(stdout.Bytes()))
}

// checkAlert checks a pool alert printed by an alert scenario.
func checkAlert(t *testing.T, sc scenario, out []byte) {
	t.Helper()
	var a struct {
		Kind, Reason string
		InUse        int `json:"in_use"`
		MaxOpen      int `json:"max_open"`
		Holders      []struct{ Origin string }
		Waiters      []struct{ Origin string }
	}
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("stdout is not one JSON alert: %v\n%s", err, out)
	}
	if a.Kind != "pool_wait" || a.Reason != "stall" || a.InUse != sc.maxOpen || a.MaxOpen != sc.maxOpen {
		t.Errorf("alert: %+v", a)
	}
	if len(a.Holders) != sc.maxOpen || len(a.Waiters) == 0 {
		t.Fatalf("alert lists %d holders and %d waiters; want %d and at least 1", len(a.Holders), len(a.Waiters), sc.maxOpen)
	}
	for _, h := range a.Holders {
		if !strings.HasPrefix(h.Origin, "example/handlers.go:") {
			t.Errorf("holder origin %q; want example/handlers.go:LINE", h.Origin)
		}
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

func TestScenariosSQLite(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { testScenario(t, sc) })
	}
}

// needDSN returns the DSN in the environment variable env, or skips the
// test (fails it when SQLWATCH_REQUIRE_DB=1).
func needDSN(t *testing.T, env string) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("SQLWATCH_REQUIRE_DB") == "1" {
			t.Fatalf("%s is not set and SQLWATCH_REQUIRE_DB=1", env)
		}
		t.Skipf("%s is not set: skipping (export it to run this test)", env)
	}
	return dsn
}

func TestScenariosMySQL(t *testing.T) {
	dsn := needDSN(t, "SQLWATCH_MYSQL_DSN")
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { testScenario(t, sc, "-driver", "mysql", "-dsn", dsn) })
	}
}

func TestScenariosPostgres(t *testing.T) {
	dsn := needDSN(t, "SQLWATCH_POSTGRES_DSN")
	for _, drv := range []string{"postgres", "pgx"} {
		for _, sc := range scenarios {
			t.Run(drv+"/"+sc.name, func(t *testing.T) { testScenario(t, sc, "-driver", drv, "-dsn", dsn) })
		}
	}
}

func TestUnknownScenario(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-scenario", "nope", "-addr", "127.0.0.1:0"}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("run = %d, want 2\nstderr:\n%s", code, stderr.String())
	}
	for _, want := range append(scenarioNames(), `unknown scenario "nope"`) {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}

// TestDemo runs the default mode (demo traffic, then serving) and stops
// it once every scenario's leak has been logged.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.LockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-leak-threshold", "200ms"}, &stdout, &stderr)
	}()

	want := map[string]bool{} // "kind func" of each scenario's report
	deadline := time.After(10 * time.Second)
	leaks := 0
	for _, sc := range scenarios {
		if !sc.alert && sc.misuse == "" {
			leaks++
		}
	}
	for len(want) < leaks {
		select {
		case code := <-done:
			t.Fatalf("run returned %d before being interrupted\nstderr:\n%s", code, stderr.String())
		case <-deadline:
			t.Fatalf("not every scenario was reported; got %v\nstderr:\n%s", want, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		for line := range strings.Lines(stderr.String()) {
			var rec struct{ Level, Kind, Origin string }
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Level != "WARN" {
				continue
			}
			for _, sc := range scenarios {
				if !sc.alert && sc.misuse == "" && rec.Kind == sc.kind.String() && strings.HasPrefix(rec.Origin, "example/handlers.go:") {
					want[sc.name] = true
				}
			}
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run = %d after interruption, want 0\nstderr:\n%s", code, stderr.String())
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}

// TestNewcomer: on start the example logs the URLs of the live page and
// of the metrics, and with -log text its lines are slog's text format.
// Both URLs answer.
func TestNewcomer(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr testutil.LockedBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-serve", "-log", format}, &stdout, &stderr)
			}()
			urls := regexp.MustCompile(`"?page"?[=:]"?(http://[^" ]+/debug/sqlwatch)"?.*"?metrics"?[=:]"?(http://[^" ]+/metrics)`)
			var m []string
			deadline := time.After(10 * time.Second)
			for m == nil {
				select {
				case code := <-done:
					t.Fatalf("run returned %d\nstderr:\n%s", code, stderr.String())
				case <-deadline:
					t.Fatalf("no URLs logged\nstderr:\n%s", stderr.String())
				case <-time.After(20 * time.Millisecond):
				}
				m = urls.FindStringSubmatch(stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if format == "text" && !strings.HasPrefix(first, "time=") {
				t.Errorf("-log text: first line %q; want slog's text format", first)
			}
			if format == "json" && !json.Valid([]byte(first)) {
				t.Errorf("-log json: first line %q is not JSON", first)
			}
			for _, u := range m[1:] {
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s", u, resp.Status)
				}
			}
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("run returned %d after cancel", code)
			}
		})
	}
	var stderr testutil.LockedBuffer
	if code := run(context.Background(), []string{"-log", "yaml"}, io.Discard, &stderr); code != 2 {
		t.Errorf("-log yaml: exit %d; want 2", code)
	}
}
