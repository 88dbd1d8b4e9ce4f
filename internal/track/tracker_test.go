package track

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/testutil"
)

// fakeClock is an injected clock that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a Tracker whose watchdog never ticks on its own (tests call
// Scan), logging JSON into a buffer.
type fixture struct {
	t       *Tracker
	clock   *fakeClock
	buf     *syncBuffer
	reports []Report
	mu      sync.Mutex
}

// syncBuffer is the log, with its lines decoded.
type syncBuffer struct{ testutil.LockedBuffer }

func (s *syncBuffer) lines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{now: time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)}, buf: &syncBuffer{}}
	cfg.Now = f.clock.Now
	cfg.Interval = time.Hour
	if cfg.DBName == "" {
		cfg.DBName = "orders"
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(f.buf, nil))
	user := cfg.OnReport
	cfg.OnReport = func(r Report) {
		f.mu.Lock()
		f.reports = append(f.reports, r)
		f.mu.Unlock()
		if user != nil {
			user(r)
		}
	}
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.t = tr
	t.Cleanup(func() { tr.Stop() })
	return f
}

// flush stops the watchdog so that queued release lines are logged.
func (f *fixture) flush() { f.t.Stop() }

func (f *fixture) got() []Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Report(nil), f.reports...)
}

func TestLeakReportedOnceThenReleased(t *testing.T) {
	f := newFixture(t, Config{})
	r := f.t.Open(KindTx, 0)
	r.Note("UPDATE accounts SET balance = balance - ? WHERE id = ?")
	r.Note("SELECT balance FROM accounts WHERE id = ?")

	f.clock.add(DefaultTxThreshold - time.Second)
	f.t.Scan()
	if n := len(f.got()); n != 0 {
		t.Fatalf("got %d reports before the threshold; want 0", n)
	}
	f.clock.add(2 * time.Second)
	f.t.Scan()
	f.clock.add(time.Minute)
	f.t.Scan() // no second warning for the same tx
	f.clock.add(30 * time.Second)
	f.t.Close(r)
	f.flush()

	reps := f.got()
	if len(reps) != 2 {
		t.Fatalf("got %d reports; want a leak and a release: %+v", len(reps), reps)
	}
	leakRep, rel := reps[0], reps[1]
	if leakRep.Released || leakRep.Kind != KindTx || leakRep.Age != DefaultTxThreshold+time.Second {
		t.Errorf("leak report: got %+v", leakRep)
	}
	// (The origin itself is checked in origin_test.go: frames of package
	// leak are library frames, so here it is the testing package's.)
	if leakRep.Statements != 2 || leakRep.LastQuery != "SELECT balance FROM accounts WHERE id = ?" {
		t.Errorf("statements: got %d %q", leakRep.Statements, leakRep.LastQuery)
	}
	if !rel.Released || rel.Held != DefaultTxThreshold+time.Second+90*time.Second || rel.Origin != leakRep.Origin {
		t.Errorf("release: got %+v", rel)
	}

	// The JSON contract.
	lines := f.buf.lines()
	if len(lines) != 2 {
		t.Fatalf("got %d log lines; want 2", len(lines))
	}
	w := lines[0]
	for _, key := range []string{"kind", "db_name", "age", "threshold", "origin", "func", "stack", "statements", "last_query"} {
		if _, ok := w[key]; !ok {
			t.Errorf("warning lacks %q: %v", key, w)
		}
	}
	if w["level"] != "WARN" || !strings.HasPrefix(w["msg"].(string), "sqlwatch: transaction open for 1m1s") ||
		!strings.Contains(w["msg"].(string), leakRep.Origin) || w["kind"] != "tx" || w["db_name"] != "orders" {
		t.Errorf("warning: got %v", w)
	}
	i := lines[1]
	if i["level"] != "INFO" || !strings.HasPrefix(i["msg"].(string), "sqlwatch: leaked transaction released after 2m31s") ||
		i["held"] != "2m31s" || i["origin"] != leakRep.Origin || i["kind"] != "tx" || i["db_name"] != "orders" {
		t.Errorf("release line: got %v", i)
	}
}

func TestThresholdsPerKind(t *testing.T) {
	f := newFixture(t, Config{
		Thresholds:    [numKinds]time.Duration{KindTx: time.Second, KindConn: 0, KindRows: 3 * time.Second},
		ThresholdsSet: [numKinds]bool{KindConn: true},
	})
	f.t.Open(KindTx, 0)
	f.t.Open(KindConn, 0)
	f.t.Open(KindRows, 0)
	f.t.Open(KindStmt, 0) // off by default
	f.clock.add(2 * time.Second)
	f.t.Scan()
	if got := kinds(f.got()); got != "tx" {
		t.Errorf("after 2s: got %q; want tx", got)
	}
	f.clock.add(time.Hour)
	f.t.Scan()
	if got := kinds(f.got()); got != "tx rows" {
		t.Errorf("after an hour: got %q; want %q (conn disabled, stmt off by default)", got, "tx rows")
	}
	if n := f.t.OpenCount(KindConn); n != 1 {
		t.Errorf("a disabled kind is still tracked: got %d open conns; want 1", n)
	}
}

func kinds(reps []Report) string {
	var s []string
	for _, r := range reps {
		s = append(s, r.Kind.String())
	}
	return strings.Join(s, " ")
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, Config{ReportBurst: 3, ReportsPerMinute: 6})
	for range 10 {
		f.t.Open(KindTx, 0)
	}
	f.clock.add(2 * time.Minute)
	f.t.Scan()
	if n := len(f.got()); n != 3 {
		t.Fatalf("burst: got %d reports; want 3", n)
	}
	if s := f.t.Stats(); s.Suppressed != 7 || s.Reported != 3 {
		t.Errorf("stats: got %+v; want 3 reported, 7 suppressed", s)
	}
	// Suppressed leaks are never reported again; new ones are, once the
	// bucket refills, and say how many were suppressed.
	f.t.Open(KindTx, 0)
	f.clock.add(2 * time.Minute)
	f.t.Scan()
	reps := f.got()
	if len(reps) != 4 || reps[3].Suppressed != 7 {
		t.Fatalf("after refill: got %d reports, last %+v; want 4, the last mentioning 7 suppressed", len(reps), reps[len(reps)-1])
	}
}

func TestPanickingCallbackIsContained(t *testing.T) {
	f := newFixture(t, Config{OnReport: func(Report) { panic("boom") }})
	f.t.Open(KindTx, 0)
	f.clock.add(time.Hour)
	f.t.Scan()
	if s := f.t.Stats(); s.Panics != 1 || s.Reported != 1 {
		t.Errorf("stats: got %+v; want 1 reported, 1 panic", s)
	}
	if n := len(f.buf.lines()); n != 1 {
		t.Errorf("got %d log lines; want the warning logged despite the panic", n)
	}
}

func TestSnapshotOldestFirst(t *testing.T) {
	f := newFixture(t, Config{})
	f.t.Open(KindRows, 0)
	f.clock.add(time.Second)
	f.t.Open(KindTx, 0).Note("INSERT INTO t VALUES (?)")
	f.clock.add(time.Second)
	snap := f.t.Snapshot()
	if len(snap) != 2 || snap[0].Kind != KindRows || snap[0].Age != 2*time.Second || snap[1].LastQuery != "INSERT INTO t VALUES (?)" {
		t.Errorf("snapshot: got %+v", snap)
	}
}

func TestQueryTruncation(t *testing.T) {
	f := newFixture(t, Config{QueryLimit: 10})
	r := f.t.Open(KindTx, 0)
	r.Note("SELECT é, b, c FROM t")
	_, q := r.statementInfo()
	if q != "SELECT é,…" {
		t.Errorf("got %q; want %q", q, "SELECT é,…")
	}
	r.Note(strings.Repeat("x", 9) + "é") // cut inside the two-byte rune
	if _, q := r.statementInfo(); q != strings.Repeat("x", 9)+"…" {
		t.Errorf("got %q", q)
	}
}

func TestInvalidConfig(t *testing.T) {
	f := func(cfg Config) {
		t.Helper()
		tr, err := NewTracker(cfg)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: got %v; want ErrInvalidConfig", cfg, err)
		}
		if tr != nil {
			tr.Stop()
		}
	}
	f(Config{Thresholds: [numKinds]time.Duration{KindTx: -1}})
	f(Config{Interval: -time.Second})
	f(Config{ReportBurst: -1})
	f(Config{QueryLimit: -5})
}

func TestTrackersRegistry(t *testing.T) {
	tr, err := NewTracker(Config{DBName: "registry"})
	if err != nil {
		t.Fatal(err)
	}
	found := func() bool {
		for _, x := range Trackers() {
			if x == tr {
				return true
			}
		}
		return false
	}
	if !found() {
		t.Error("a new tracker is not listed")
	}
	tr.Stop()
	tr.Stop()
	if found() {
		t.Error("a stopped tracker is still listed")
	}
}

func TestWatchdogRunsOnItsOwn(t *testing.T) {
	got := make(chan Report, 1)
	tr, err := NewTracker(Config{
		Thresholds: [numKinds]time.Duration{KindTx: 20 * time.Millisecond},
		Logger:     slog.New(slog.DiscardHandler),
		OnReport:   func(r Report) { got <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	tr.Open(KindTx, 0)
	select {
	case r := <-got:
		if r.Kind != KindTx {
			t.Errorf("got %v", r.Kind)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog did not report within 5s")
	}
}

func TestConcurrentOpenClose(t *testing.T) {
	f := newFixture(t, Config{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				r := f.t.Open(KindConn, 0)
				r.Note("SELECT 1")
				f.t.Close(r)
			}
		}()
	}
	for range 50 {
		f.t.Scan()
		f.t.Snapshot()
	}
	wg.Wait()
	for _, k := range Kinds {
		if n := f.t.OpenCount(k); n != 0 {
			t.Errorf("%s: %d still open; want 0", k, n)
		}
	}
}

// TestConcurrentReporting: leak reports and release lines while
// resources are opened, noted and closed on eight goroutines (the
// reporting path under the race detector). Every reported resource is
// closed in the end, so every leak report gets its release line.
func TestConcurrentReporting(t *testing.T) {
	f := newFixture(t, Config{ReportsPerMinute: 1 << 20, ReportBurst: 1 << 20})
	held := f.t.Open(KindConn, 0) // open across the run: reported for sure
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := fmt.Sprintf("SELECT %d", w)
			var prev *Resource
			for i := range 1000 {
				r := f.t.Open(KindConn, 0)
				r.Note(q)
				if i%3 == 0 { // some stay open across a few scans
					f.t.Close(prev)
					prev = r
					continue
				}
				f.t.Close(r)
			}
			f.t.Close(prev)
		}()
	}
	for range 50 {
		f.clock.add(DefaultConnThreshold + time.Second)
		f.t.Scan()
		f.t.Snapshot()
	}
	wg.Wait()
	f.t.Close(held)
	f.flush()

	var leaks, released int
	for _, r := range f.got() {
		if r.Released {
			released++
			continue
		}
		leaks++
		if r.Kind != KindConn || (r.Statements == 0) != (r.LastQuery == "") || (r.LastQuery != "" && !strings.HasPrefix(r.LastQuery, "SELECT ")) {
			t.Errorf("report: %+v", r)
		}
	}
	st := f.t.Stats()
	t.Logf("%d leak reports, %d release lines, %d dropped", leaks, released, st.Dropped)
	if leaks == 0 {
		t.Fatal("nothing was reported")
	}
	if st.Dropped != 0 || released != leaks {
		t.Errorf("%d release lines for %d leak reports (%d dropped; the queue holds more than were reported)", released, leaks, st.Dropped)
	}
	for _, k := range Kinds {
		if n := f.t.OpenCount(k); n != 0 {
			t.Errorf("%s: %d still open; want 0", k, n)
		}
	}
}

// TestReleaseAfterStopIsLogged: a reported leak released after Stop
// (DB.Close) still gets its release line, logged before Close returns.
func TestReleaseAfterStopIsLogged(t *testing.T) {
	f := newFixture(t, Config{})
	r := f.t.Open(KindTx, 0)
	f.clock.add(DefaultTxThreshold + time.Second)
	f.t.Scan()
	f.t.Stop()
	f.clock.add(time.Second)
	f.t.Close(r)
	reps := f.got()
	if len(reps) != 2 || !reps[1].Released || reps[1].Kind != KindTx || reps[1].Held != DefaultTxThreshold+2*time.Second {
		t.Fatalf("got %+v; want the leak and its release", reps)
	}
	lines := f.buf.lines()
	if len(lines) != 2 || !strings.HasPrefix(lines[1]["msg"].(string), "sqlwatch: leaked transaction released after") {
		t.Errorf("log lines: %v", lines)
	}
	if st := f.t.Stats(); st.Released != 1 || st.Dropped != 0 {
		t.Errorf("Released %d, Dropped %d; want 1 and 0", st.Released, st.Dropped)
	}
}

// TestReleasesRacingStop: reported leaks released before, while and
// after Stop runs are each logged once, by the watchdog or after it.
func TestReleasesRacingStop(t *testing.T) {
	const n = 200
	f := newFixture(t, Config{ReportBurst: n})
	rs := make([]*Resource, n)
	for i := range rs {
		rs[i] = f.t.Open(KindTx, 0)
	}
	f.clock.add(DefaultTxThreshold + time.Second)
	f.t.Scan()
	if got := f.t.Stats().Reported; got != n {
		t.Fatalf("reported %d; want %d", got, n)
	}
	// Four goroutines release the leaks: the first half racing Stop, the
	// second half after it.
	release := func(from, to int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := from + w; i < to; i += 4 {
					f.t.Close(rs[i])
				}
			})
		}
		wg.Wait()
	}
	stopped := make(chan struct{})
	go func() {
		f.t.Stop()
		close(stopped)
	}()
	release(0, n/2)
	<-stopped
	release(n/2, n)
	if st := f.t.Stats(); st.Released != n || st.Dropped != 0 {
		t.Errorf("Released %d, Dropped %d; want %d and 0", st.Released, st.Dropped, n)
	}
	if lines := f.buf.lines(); len(lines) != 2*n {
		t.Errorf("got %d log lines; want %d reports and %d releases", len(lines), n, n)
	}
}

// TestReleaseAfterStopWithBlockedLogger: after Stop, a logger that does
// not return holds Close for stopGrace at most, and the line is counted
// as dropped.
func TestReleaseAfterStopWithBlockedLogger(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	var blocking atomic.Bool
	f := newFixture(t, Config{OnReport: func(r Report) {
		if blocking.Load() {
			<-block
		}
	}})
	r := f.t.Open(KindTx, 0)
	f.clock.add(DefaultTxThreshold + time.Second)
	f.t.Scan()
	f.t.Stop()
	blocking.Store(true)
	start := time.Now()
	f.t.Close(r)
	if d := time.Since(start); d < stopGrace || d > stopGrace+time.Second {
		t.Errorf("Close took %v with the callback blocked; want about %v", d, stopGrace)
	}
	if st := f.t.Stats(); st.Dropped != 1 || st.Released != 1 {
		t.Errorf("Dropped %d, Released %d; want 1 and 1 (the line was logged, its callback is still running)", st.Dropped, st.Released)
	}
}
