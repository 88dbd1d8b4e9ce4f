package driver

import (
	"context"
	"database/sql/driver"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/ngrok/sqlmw"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/frames"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

var _ driver.Connector = (*connector)(nil)

// pool is the per-pool state shared by the connector and its conns.
type pool struct {
	tracker *track.Tracker
	rec     *record.Recorder
	ic      sqlmw.Interceptor // nil unless WithInterceptor
	detect  detectors         // the misuse detectors that are on
	attrs   bool              // WithContextAttrs is set (tracker.HasContextAttrs)
	txs     txIndex           // open transactions by goroutine, for tx_bypass
	filter  *callstack.Filter // the tracker's: which frames are the application's
	appPCs  frames.Cache      // filter's answer by return address, for tx_bypass
	grammar dsnGrammar        // the wrapped driver's, by its package: its SQL dialect too
}

// begin starts timing an operation when metrics are on: it returns an
// internal/clock reading, or 0 when metrics are off.
func (p *pool) begin() int64 {
	if p.rec.Enabled() {
		return clock.Now()
	}
	return 0
}

// stop ends an operation timed by begin, counting its error, and returns
// the clock reading that ended it and its duration, or 0 and 0 when
// metrics are off (nothing was read): the caller records the duration
// with the statement (track.Resource.NoteTimed, in the slot numbered op).
func (p *pool) stop(op record.Op, start int64, err error) (int64, time.Duration) {
	if start == 0 {
		return 0, 0
	}
	end := clock.Now()
	if err != nil {
		p.rec.Failed(op, err)
	}
	return end, clock.Between(start, end)
}

// done records an operation timed by begin and returns the clock reading
// that ended it, or 0 when metrics are off (nothing was read).
func (p *pool) done(op record.Op, start int64, err error) int64 {
	if start == 0 {
		return 0
	}
	end := clock.Now()
	p.rec.Done(op, clock.Between(start, end), err)
	return end
}

// newPool creates a pool's tracker, named by the option or by fallback.
func (d *wrappedDriver) newPool(fallback string) (*pool, error) {
	g := grammarOf(d.inner)
	cfg := d.opts.settings().TrackerConfig(fallback, g.dialect())
	t, err := track.NewTracker(cfg)
	if err != nil {
		return nil, err
	}
	return &pool{tracker: t, rec: record.NewRecorder(cfg.DBName), ic: d.opts.interceptor, detect: detectAll &^ d.opts.disabled,
		attrs: t.HasContextAttrs(), filter: cfg.Filter, grammar: g}, nil
}

// connector opens the conns of one pool.
type connector struct {
	inner  driver.Connector
	driver *poolDriver
	pool   *pool
}

func (d *wrappedDriver) newConnector(c driver.Connector, fallbackName string) (driver.Connector, error) {
	p, err := d.newPool(fallbackName)
	if err != nil {
		return nil, err
	}
	return &connector{inner: c, driver: &poolDriver{wrappedDriver: d, pool: p}, pool: p}, nil
}

// Connect opens a conn through the inner connector. database/sql calls it
// on the goroutine that checks a conn out ((*DB).conn: a statement, a
// BeginTx, DB.Conn or a ping with the pool under its limit), and on its
// opener goroutine for a conn that goes to a waiter or to the idle pool.
// In the first case the checkout starts here, with the caller's stack:
// a *sql.Conn taken on a brand-new conn and never used is then tracked
// like any other. In the second the conn is not checked out: the
// checkout starts at its first use (see conn.checkout).
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	var (
		ci  driver.Conn
		err error
	)
	if ic := c.pool.ic; ic != nil {
		ci, err = ic.ConnectorConnect(ctx, c.inner)
	} else {
		ci, err = c.inner.Connect(ctx)
	}
	if err != nil {
		return nil, err
	}
	cn, dc := newConn(ci, c.pool)
	switch by, caller := connectCaller(); by {
	case byCaller:
		cn.checkout()
	case byWrapper:
		c.pool.tracker.NoteWrapperOpen(caller)
	}
	return dc, nil
}

// Who called Connect (see connectCaller).
const (
	byOpener  = iota // database/sql's opener goroutine
	byCaller         // (*DB).conn, for its own caller
	byWrapper        // a function outside database/sql: a wrapper's connector
)

// connectCaller tells who called Connect: database/sql's (*DB).conn,
// which hands the new conn to its own caller (byCaller), its opener
// ((*DB).openNewConnection: byOpener), or a function outside database/sql
// (byWrapper, with its name): a driver wrapper's connector opened over
// sqlwatch's, whose conns database/sql holds and which may not pass
// IsValid on (track.Tracker.NoteWrapperOpen). Called only by Connect,
// which dials a connection anyway; it looks up function names without
// symbolizing files and lines, and does not allocate but for a wrapper's
// name. A wrapper's conns start their checkouts at their first use, as the
// opener's do.
func connectCaller() (by int, caller string) {
	var pcs [32]uintptr
	n := runtime.Callers(3, pcs[:])
	for i, pc := range pcs[:n] {
		// pc is a return address: pc-1 is in the call. For a call
		// inlined into its caller, FuncForPC names the innermost
		// function.
		f := runtime.FuncForPC(pc - 1)
		if f == nil {
			continue
		}
		name := f.Name()
		if i == 0 && !strings.HasPrefix(name, "database/sql.") {
			return byWrapper, name
		}
		switch name {
		case "database/sql.(*DB).conn":
			return byCaller, ""
		case "database/sql.(*DB).openNewConnection", "database/sql.(*DB).connectionOpener":
			return byOpener, ""
		}
	}
	return byOpener, ""
}

// openedBy names the caller of the caller of the function calling it: for
// Open, which database/sql never calls on a pool (sql.Open takes
// OpenConnector), the driver wrapper or program that opened the conn.
func openedBy() string {
	pc, _, _, ok := runtime.Caller(2)
	if !ok {
		return "unknown"
	}
	if f := runtime.FuncForPC(pc - 1); f != nil {
		return f.Name()
	}
	return "unknown"
}

// Driver returns the wrapped driver, bound to this pool.
func (c *connector) Driver() driver.Driver { return c.driver }

// Close is called by DB.Close: it stops the pool's watchdog and closes the
// inner connector when that is an io.Closer (database/sql would have
// closed it without the wrapper).
func (c *connector) Close() error {
	c.pool.tracker.Stop()
	if cl, ok := c.inner.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
