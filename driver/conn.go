package driver

import (
	"context"
	"database/sql/driver"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Every conn claims these; when the driver lacks one, the method does what
// database/sql does without it.
var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
)

// conn wraps a driver conn. database/sql serializes the calls on one conn
// (it holds the conn's lock), so its fields need no lock of their own.
//
// Which interfaces a conn claims: ExecerContext and QueryerContext only
// when the driver has the context or the legacy form (claiming them
// otherwise would make database/sql convert arguments without the
// statement's ColumnConverter); SessionResetter only when the driver has
// it (its presence, with Validator, decides whether database/sql keeps a
// conn after a rollback on context cancellation); Validator always, since
// IsValid is the only sign that a conn went back to the pool — for a
// driver with SessionResetter but no Validator, IsValid reproduces the
// discard database/sql would have done (see tx.Rollback).
type conn struct {
	inner driver.Conn
	p     *pool

	ec  driver.ExecerContext  // nil: the driver has no Execer
	qc  driver.QueryerContext // nil: the driver has no Queryer
	pc  driver.ConnPrepareContext
	bc  driver.ConnBeginTx
	nvc driver.NamedValueChecker
	val driver.Validator
	rs  driver.SessionResetter // nil: the driver has none

	// resetterOnly is true when the driver has SessionResetter but not
	// Validator.
	resetterOnly bool

	res     *track.Resource // the current checkout; nil while idle in the pool
	resBuf  track.Resource  // where res is kept
	tx      *tx             // the open transaction on this conn
	discard bool            // make the next IsValid report false

	// attrsDue is true, with WithContextAttrs, from the start of a
	// checkout until its first call with a context takes the checkout's
	// context attributes (takeAttrs).
	attrsDue bool

	// explained is true once a bad connection on the current checkout
	// would be no news of a server or network kill (see failed): one was
	// counted already, or the driver had its own reason to give the conn
	// up.
	explained bool

	stmts     int                // statements run in the current checkout
	lastUsed  int64              // when the last statement ended (internal/clock)
	openStmts map[*stmt]struct{} // prepared statements open on this conn
	openRows  int                // rows open on this conn
	oldest    *rows              // the open rows, oldest first, linked by rows.newer
	newest    *rows              // the last of them
	spareRows rows               // the wrapper of the next rows, when not busy
	spareRes  track.Resource     // and its resource
	spareBusy bool

	sql sqlTx // a transaction begun with SQL text (sqltx.go)
}

// sqlwatchConn is implemented by every conn type of this package.
type sqlwatchConn interface{ sqlwatchConn() }

func (c *conn) sqlwatchConn() {}

// Raw returns the driver's own conn. See [Unwrap].
func (c *conn) Raw() driver.Conn { return c.inner }

// newConn wraps ci: it returns the wrapper and the conn type that claims
// the interfaces ci has.
func newConn(ci driver.Conn, p *pool) (*conn, driver.Conn) {
	c := &conn{inner: ci, p: p, lastUsed: clock.Now()}
	c.sql.init(ci, p.grammar)
	c.ec, c.qc = execerOf(ci), queryerOf(ci)
	if pc, ok := ci.(driver.ConnPrepareContext); ok {
		c.pc = pc
	} else {
		c.pc = legacyPreparer{ci}
	}
	if bc, ok := ci.(driver.ConnBeginTx); ok {
		c.bc = bc
	} else {
		c.bc = legacyBeginner{ci}
	}
	c.nvc, _ = ci.(driver.NamedValueChecker)
	c.val, _ = ci.(driver.Validator)
	c.rs, _ = ci.(driver.SessionResetter)
	hasR := c.rs != nil
	c.resetterOnly = hasR && c.val == nil

	return c, c.claiming()
}

// checkout marks the conn as checked out by the calling goroutine, unless
// it is already. It is called by Connect for a conn that database/sql
// hands to Connect's caller, by resetSession for a used conn taken from
// the pool, and by every statement: database/sql gives no sign when its
// opener goroutine's new conn reaches a waiter or leaves the idle pool for
// the first time, so there the first use counts. It returns the new
// checkout's resource, or nil when the conn was checked out before this
// call, so that a tx or rows opened by the same call can share its stack.
func (c *conn) checkout() *track.Resource {
	if c.res == nil {
		c.res = c.p.tracker.OpenIn(&c.resBuf, track.KindConn, 2)
		c.stmts = 0
		c.explained = false
		c.attrsDue = c.p.attrs
		if c.sql.bits&sqlPending != 0 {
			c.sqlRetaken()
		}
		return c.res
	}
	return nil
}

// takeAttrs gives the checkout the context attributes of ctx, the
// context of its first call that has one (database/sql gives none at
// checkout), and returns them. The caller checks attrsDue first, so that
// without WithContextAttrs a statement pays one load and one branch.
func (c *conn) takeAttrs(ctx context.Context) []slog.Attr {
	c.attrsDue = false
	a := c.p.tracker.ContextAttrs(ctx)
	if c.res != nil {
		c.res.SetAttrs(a)
	}
	return a
}

// endCheckout marks the conn as back in the pool (or closed).
func (c *conn) endCheckout() {
	c.attrsDue = false
	if c.res != nil {
		if c.p.rec.Enabled() {
			c.p.tracker.CloseHeld(c.res, c.res.Elapsed())
		} else {
			c.p.tracker.Close(c.res)
		}
		c.res = nil
	}
}

// note records a statement on the checkout and the open tx.
func (c *conn) note(query string) { c.noteTimed(query, -1, 0) }

// noteTimed is note for a statement that took d, recorded in the
// tracker's duration slot (a negative slot records no duration).
func (c *conn) noteTimed(query string, slot int, d time.Duration) {
	c.res.NoteTimed(query, slot, d)
	c.noteTx(query)
}

// noteTx counts a statement on the conn and records it on the open tx,
// if there is one. It does not record it on the checkout's resource: the
// caller does that, with Resource.NoteTimed or, for a query that opens
// rows, with track.Opening.NoteHolder.
func (c *conn) noteTx(query string) {
	c.stmts++
	if c.tx != nil {
		c.tx.res.Note(query)
	}
}

// slot is the tracker's duration slot for op, or -1 when the statement
// was not timed (end is 0: metrics are off).
func slot(op record.Op, end int64) int {
	if end == 0 {
		return -1
	}
	return int(op)
}

// used records when the last statement ended: end, the reading that
// timed it, or a fresh reading when metrics are off (end is 0).
func (c *conn) used(end int64) {
	if end == 0 {
		end = clock.Now()
	}
	c.lastUsed = end
}

// resetSession is called by database/sql when it takes a used conn out of
// the pool: a checkout starts.
func (c *conn) resetSession(ctx context.Context) error {
	// The checkout is not checked for misuse: the statement it is for
	// is, and checking both counted one bypass twice.
	last := c.explained
	c.endCheckout()
	c.checkout()
	err := c.rs.ResetSession(ctx)
	if err != nil {
		c.diedIdle(ctx, err, last)
	}
	return err
}

// IsValid is called by database/sql when the conn goes back to the pool:
// the checkout ends.
func (c *conn) IsValid() bool {
	ok := true
	if c.discard {
		c.discard = false
		ok = false
	} else if c.val != nil {
		ok = c.val.IsValid()
	}
	if c.sql.bits != 0 || c.sql.status != nil {
		c.sqlRelease(ok)
	}
	c.p.tracker.NoteReturn()
	c.endCheckout()
	return ok
}

func (c *conn) Close() error {
	if c.tx != nil {
		c.tx.end(record.TxError, nil)
	}
	// Statements of a closed conn are gone with it, whether or not
	// database/sql gets to close them (it does not when it discards a conn
	// whose ResetSession failed).
	for s := range c.openStmts {
		s.forget()
	}
	if c.sql.bits&sqlPending != 0 {
		c.sqlClosed()
	}
	c.endCheckout()
	return c.inner.Close()
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	fresh := c.checkout()
	if c.attrsDue {
		c.takeAttrs(ctx)
	}
	var (
		si  driver.Stmt
		err error
	)
	start := c.p.begin()
	if ic := c.p.ic; ic != nil {
		ctx, si, err = ic.ConnPrepareContext(ctx, c.pc, query)
	} else {
		si, err = c.pc.PrepareContext(ctx, query)
	}
	end := c.p.done(record.OpPrepare, start, err)
	if err != nil {
		// A prepare that fails (MySQL: "busy buffer" over open rows)
		// is checked here; one that succeeds is checked when it runs.
		c.check(ctx, query)
		c.failed(ctx, err, query)
		return nil, err
	}
	return newStmt(si, c, query, ctx, fresh, end), nil
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	fresh := c.checkout()
	var (
		ti  driver.Tx
		err error
	)
	begin := ctx
	// A BEGIN over open rows is checked; a BEGIN by a goroutine with a
	// tx of its own open is no bypass (two txs on purpose, or a new call
	// of a function that leaked its tx earlier).
	c.checkRows(ctx, "BEGIN")
	start := c.p.begin()
	if ic := c.p.ic; ic != nil {
		ctx, ti, err = ic.ConnBeginTx(ctx, c.bc, opts)
	} else {
		ti, err = c.bc.BeginTx(ctx, opts)
	}
	end := c.p.done(record.OpBegin, start, err)
	if err != nil {
		if c.attrsDue {
			c.takeAttrs(begin)
		}
		c.failed(ctx, err, "")
		return nil, err
	}
	// The tx's context attributes are the checkout's too when this is
	// the checkout's first call with a context: f is called once.
	var attrs []slog.Attr
	if c.attrsDue {
		attrs = c.takeAttrs(begin)
	} else {
		attrs = c.p.tracker.ContextAttrs(begin)
	}
	res := c.p.tracker.OpenLike(track.KindTx, track.Opening{Like: fresh, Holder: c.res, At: end, Attrs: attrs}, 1)
	t := &tx{inner: ti, c: c, ctx: ctx, begin: begin, res: res}
	if c.p.detect&detectBypass != 0 {
		t.goid = t.res.Goroutine()
		c.p.mark(t.goid, t)
	}
	c.tx = t
	if c.sql.bits != 0 {
		c.sqlBegun(attrs)
	}
	return t, nil
}

func (c *conn) Ping(ctx context.Context) error {
	p, ok := c.inner.(driver.Pinger)
	if !ok {
		return nil
	}
	c.checkout()
	if c.attrsDue {
		c.takeAttrs(ctx)
	}
	if ic := c.p.ic; ic != nil {
		return ic.ConnPing(ctx, p)
	}
	return p.Ping(ctx)
}

func (c *conn) execContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.checkout()
	if c.attrsDue {
		c.takeAttrs(ctx)
	}
	var (
		r   driver.Result
		err error
	)
	start := c.p.begin()
	if ic := c.p.ic; ic != nil {
		r, err = ic.ConnExecContext(ctx, c.ec, query, args)
		r = wrapResult(r, ic)
	} else {
		r, err = c.ec.ExecContext(ctx, query, args)
	}
	end, d := c.p.stop(record.OpExec, start, err)
	// On ErrSkip database/sql prepares the statement and runs it again:
	// it is counted and checked there.
	if err != driver.ErrSkip {
		c.check(ctx, query)
		if err != nil {
			c.failed(ctx, err, query)
		}
		c.noteTimed(query, slot(record.OpExec, end), d)
		c.used(end)
		if c.mayBegin(query) {
			c.sqlText(ctx, query, err)
		}
	}
	return r, err
}

func (c *conn) queryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	fresh := c.checkout()
	var (
		ri  driver.Rows
		err error
	)
	start := c.p.begin()
	if ic := c.p.ic; ic != nil {
		ctx, ri, err = ic.ConnQueryContext(ctx, c.qc, query, args)
	} else {
		ri, err = c.qc.QueryContext(ctx, query, args)
	}
	end, d := c.p.stop(record.OpQuery, start, err)
	if err == driver.ErrSkip {
		return nil, err
	}
	c.check(ctx, query)
	if c.mayBegin(query) {
		c.sqlText(ctx, query, err)
	}
	if err != nil {
		if c.attrsDue {
			c.takeAttrs(ctx)
		}
		c.failed(ctx, err, query)
		c.noteTimed(query, slot(record.OpQuery, end), d)
		c.used(end)
		return nil, err
	}
	c.used(end)
	c.noteTx(query)
	return newRows(ri, c, ctx, fresh, track.Opening{At: end, Query: query, NoteHolder: true, Slot: slot(record.OpQuery, end), D: d}), nil
}

// CheckNamedValue defers to the driver's checker; without one it returns
// driver.ErrSkip, which makes database/sql use the statement's
// ColumnConverter or its default conversion, as it would have.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if c.nvc != nil {
		return c.nvc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// calledFromAwaitDone reports whether database/sql's Tx.awaitDone (the
// rollback on context cancellation) is on the calling goroutine's stack.
// Slow; called only on a rollback after the context ended.
func calledFromAwaitDone() bool {
	var pcs [24]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "database/sql.(*Tx).awaitDone") {
			return true
		}
		if !more {
			return false
		}
	}
}
