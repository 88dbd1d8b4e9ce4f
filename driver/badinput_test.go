package driver_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
)

// isSentinel fails unless err wraps want and reads "sqlwatch: ...".
func isSentinel(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v; want an error wrapping %q", what, err, want)
		return
	}
	if !strings.HasPrefix(err.Error(), "sqlwatch: ") {
		t.Errorf("%s: error %q lacks the sqlwatch: prefix", what, err)
	}
}

// TestBadInputRegistration: every wrong argument of the registration
// functions gives a sentinel error, never a panic.
func TestBadInputRegistration(t *testing.T) {
	fd := fakedb.New(fakedb.Full)
	isSentinel(t, "nil driver", driver.Register("sqlwatch-bad-nil", nil), driver.ErrNilDriver)
	_, err := driver.NewConnector(nil)
	isSentinel(t, "nil connector", err, driver.ErrNilDriver)
	isSentinel(t, "empty name", driver.Register("", fd.Driver()), driver.ErrEmptyName)
	isSentinel(t, "empty name by name", driver.RegisterByName("", "sqlite"), driver.ErrEmptyName)
	isSentinel(t, "empty inner name", driver.RegisterByName("sqlwatch-bad-empty-inner", ""), driver.ErrEmptyName)
	isSentinel(t, "unknown inner", driver.RegisterByName("sqlwatch-bad-unknown", "no-such-driver"), driver.ErrUnknownDriver)
	if err := driver.RegisterByName("sqlwatch-bad-unknown", "no-such-driver"); err == nil || !strings.Contains(err.Error(), `"no-such-driver"`) {
		t.Errorf("unknown inner: %v does not name the driver", err)
	}
	if err := driver.Register("sqlwatch-bad-dup", fd.Driver()); err != nil {
		t.Fatal(err)
	}
	isSentinel(t, "duplicate", driver.Register("sqlwatch-bad-dup", fd.Driver()), driver.ErrDuplicateName)
	isSentinel(t, "duplicate of database/sql's own", driver.RegisterByName("mysql", "sqlite"), driver.ErrDuplicateName)

	for name, opt := range map[string]driver.Option{
		"negative tx threshold":   driver.WithThreshold(leak.KindTx, -time.Nanosecond),
		"negative stmt threshold": driver.WithThreshold(leak.KindStmt, -time.Hour),
		"unknown kind":            driver.WithThreshold(leak.Kind(0), time.Second),
		"negative interval":       driver.WithInterval(-time.Second),
		"zero interval":           driver.WithInterval(0),
		"negative report limit":   driver.WithReportLimit(-1, 10),
		"negative burst":          driver.WithReportLimit(60, -1),
		"negative query limit":    driver.WithQueryLimit(-5),
		"nil logger":              driver.WithLogger(nil),
		"nil interceptor":         driver.WithInterceptor(nil),
		"empty db name":           driver.WithDBName(""),
		"unknown detector":        driver.WithoutDetectors("no_such_detector"),
	} {
		_, err := driver.NewConnector(fd.Connector(), opt)
		isSentinel(t, name+" (NewConnector)", err, driver.ErrInvalidOption)
		isSentinel(t, name+" (Register)", driver.Register("sqlwatch-bad-opt-"+name, fd.Driver(), opt), driver.ErrInvalidOption)
		isSentinel(t, name+" (RegisterByName)", driver.RegisterByName("sqlwatch-bad-opt-"+name, "sqlite", opt), driver.ErrInvalidOption)
	}
	// A nil Option is skipped.
	if c, err := driver.NewConnector(fd.Connector(), nil, quiet()); err != nil {
		t.Errorf("nil option: %v", err)
	} else {
		sql.OpenDB(c).Close()
	}

	// The tracker checks its own configuration too.
	for name, cfg := range map[string]track.Config{
		"negative threshold": {Thresholds: [5]time.Duration{leak.KindRows: -time.Second}},
		"negative interval":  {Interval: -time.Millisecond},
		"negative limit":     {ReportsPerMinute: -1},
		"negative burst":     {ReportBurst: -1},
		"negative query":     {QueryLimit: -1},
	} {
		tr, err := track.NewTracker(cfg)
		if tr != nil {
			tr.Stop()
		}
		isSentinel(t, "track.NewTracker "+name, err, leak.ErrInvalidConfig)
	}
}

// TestBadInputMetrics: nil and foreign pools, a nil registerer, and a
// collector registered twice.
func TestBadInputMetrics(t *testing.T) {
	fd := fakedb.New(fakedb.Full)
	c, err := driver.NewConnector(fd.Connector(), quiet(), driver.WithDBName("badinput-metrics"))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	reg := prometheus.NewRegistry()

	isSentinel(t, "nil registerer", metrics.Register(nil, db), metrics.ErrNilRegisterer)
	isSentinel(t, "nil db", metrics.Register(reg, nil), leak.ErrNotWatched)
	plain := fd.OpenDB() // not through sqlwatch
	defer plain.Close()
	isSentinel(t, "foreign db", metrics.Register(reg, plain), leak.ErrNotWatched)
	if _, err := metrics.New(nil); !errors.Is(err, leak.ErrNotWatched) {
		t.Errorf("metrics.New(nil): %v", err)
	}
	if driver.TrackerOf(nil) != nil || driver.TrackerOf(plain) != nil {
		t.Error("TrackerOf a nil or foreign pool is not nil")
	}

	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}
	isSentinel(t, "registered twice", metrics.Register(reg, db), metrics.ErrAlreadyRegistered)

	// Another pool with the same name, on the same registry.
	c2, _ := driver.NewConnector(fd.Connector(), quiet(), driver.WithDBName("badinput-metrics"))
	db2 := sql.OpenDB(c2)
	defer db2.Close()
	isSentinel(t, "same db_name", metrics.Register(reg, db2), metrics.ErrAlreadyRegistered)

	// The registry still works, and so does the pool.
	if _, err := db.Exec("UPDATE t"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather after the failed registrations: %v", err)
	}
}

// panicHandler is a slog.Handler whose Handle panics.
type panicHandler struct{ calls atomic.Int64 }

func (h *panicHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicHandler) Handle(context.Context, slog.Record) error {
	h.calls.Add(1)
	panic("sqlwatch test: the logger panics")
}
func (h *panicHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicHandler) WithGroup(string) slog.Handler      { return h }

// blockHandler is a slog.Handler whose Handle blocks until release is
// closed.
type blockHandler struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	calls   atomic.Int64
}

func newBlockHandler() *blockHandler {
	return &blockHandler{release: make(chan struct{}), entered: make(chan struct{})}
}

func (h *blockHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *blockHandler) Handle(context.Context, slog.Record) error {
	h.calls.Add(1)
	h.once.Do(func() { close(h.entered) })
	<-h.release
	return nil
}
func (h *blockHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *blockHandler) WithGroup(string) slog.Handler      { return h }

// leakAndBypass leaks a tx past the threshold and bypasses it with a pool
// statement on the same goroutine (a tx_bypass), then checks that the
// statements still work and return the right values.
func leakAndBypass(t *testing.T, db *sql.DB) *sql.Tx {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE t SET a = ?", 1); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec("UPDATE t SET b = ?, c = ?", 1, 2) // tx_bypass
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Errorf("rows affected: got %d; want 2 (the fake driver counts the arguments)", n)
	}
	return tx
}

// TestBadInputPanickingCallbacks: a report callback, a misuse callback
// and a logger that panic are recovered and counted; statements go on.
func TestBadInputPanickingCallbacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []driver.Option
	}{
		{"report and misuse callbacks", []driver.Option{
			quiet(),
			driver.WithReportFunc(func(leak.Report) { panic("sqlwatch test: the report callback panics") }),
			driver.WithMisuseFunc(func(leak.Misuse) { panic("sqlwatch test: the misuse callback panics") }),
		}},
		{"logger", []driver.Option{driver.WithLogger(slog.New(&panicHandler{}))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd := fakedb.New(fakedb.Full)
			opts := append([]driver.Option{
				driver.WithThreshold(leak.KindTx, 30*time.Millisecond),
				driver.WithInterval(10 * time.Millisecond),
			}, tc.opts...)
			c, err := driver.NewConnector(fd.Connector(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			defer db.Close()
			tr := driver.TrackerOf(db)
			tx := leakAndBypass(t, db)
			// A leak report and a misuse report: two panics at least
			// (each report's logger call or callback panics).
			waitFor(t, func() bool { return tr.Stats().Panics >= 2 && tr.Stats().Reported >= 1 })
			tx.Rollback() // a release report: another panic
			waitFor(t, func() bool { return tr.Stats().Released >= 1 })
			for i := range 50 {
				var got int64
				if err := db.QueryRow("SELECT ROWS 3").Scan(&got, new(string)); err != nil || got != 1 {
					t.Fatalf("query %d after the panics: %v, %d", i, err, got)
				}
			}
			st := tr.Stats()
			t.Logf("panics recovered: %d (reported %d, released %d, misuse %v)", st.Panics, st.Reported, st.Released, st.Misuse)
			if st.Misuse[leak.MisuseTxBypass] == 0 {
				t.Error("the bypass was not counted")
			}
		})
	}
}

// TestBadInputBlockingLogger: a logger that blocks does not slow the
// statements, and DB.Close does not wait for it for ever.
func TestBadInputBlockingLogger(t *testing.T) {
	h := newBlockHandler()
	unblocked := false
	unblock := func() {
		if !unblocked {
			unblocked = true
			close(h.release)
		}
	}
	defer unblock()
	fd := fakedb.New(fakedb.Full)
	c, err := driver.NewConnector(fd.Connector(), driver.WithLogger(slog.New(h)),
		driver.WithThreshold(leak.KindTx, 20*time.Millisecond), driver.WithThreshold(leak.KindConn, 20*time.Millisecond),
		driver.WithInterval(5*time.Millisecond), driver.WithReportLimit(100000, 1000))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	tr := driver.TrackerOf(db)

	// Leak transactions until the watchdog is stuck in the logger.
	var leaked []*sql.Tx
	for range 5 {
		tx := leakAndBypass(t, db)
		leaked = append(leaked, tx)
	}
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the logger was never called")
	}

	// While it is stuck, leaks go on being made and released (release
	// lines and misuse reports queue up, then are dropped), and 1000
	// statements must run at full speed.
	start := time.Now()
	for i := range 1000 {
		if _, err := db.Exec("UPDATE t SET n = ?", i); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			tx := leakAndBypass(t, db)
			leaked = append(leaked, tx)
		}
		if i%100 == 50 && len(leaked) > 0 {
			leaked[0].Rollback()
			leaked = leaked[1:]
		}
	}
	elapsed := time.Since(start)
	t.Logf("1000 execs with the logger blocked: %v (logger calls so far %d)", elapsed, h.calls.Load())
	if elapsed > 5*time.Second {
		t.Errorf("1000 execs took %v with the logger blocked; want < 5s", elapsed)
	}
	for _, tx := range leaked {
		tx.Rollback()
	}
	// The queue holds at most 1024 release lines: the overflow is counted.
	for range 1100 {
		tx, _ := db.Begin()
		tx.Rollback()
	}

	// DB.Close returns though the logger is still blocked.
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		unblock()
		<-closed
		t.Fatal("DB.Close waited for the blocked logger")
	}
	st := tr.Stats()
	t.Logf("stats with the logger blocked: %+v", st)
	if st.Dropped == 0 {
		t.Error("nothing was dropped: the queues did not overflow, or overflowed silently")
	}
	unblock()
}
