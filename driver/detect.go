package driver

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/errclass"
	"github.com/sqlwatch/sqlwatch/internal/frames"
	"github.com/sqlwatch/sqlwatch/internal/goid"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/stack"
)

// The misuse detectors. Each is on by default; WithoutDetectors turns
// some off. None changes what the application sees: they observe, then
// the call goes to the driver as it would have.
type detectors uint8

const (
	detectBypass detectors = 1 << iota
	detectConcurrent
	detectOpenRows
	detectLock
	detectKilled
	detectSQLTx
	detectAll = detectBypass | detectConcurrent | detectOpenRows | detectLock | detectKilled | detectSQLTx
)

var detectorNames = map[string]detectors{
	track.MisuseTxBypass:     detectBypass,
	track.MisuseConcurrent:   detectConcurrent,
	track.MisuseOpenRows:     detectOpenRows,
	track.MisuseLockConflict: detectLock,
	track.MisuseConnKilled:   detectKilled,
	track.MisuseSQLTxLeak:    detectSQLTx,
}

// txIndex finds the open transactions of a goroutine, for tx_bypass. It
// is sharded by goroutine id, so no lock is shared by all goroutines, and
// skipped entirely while no transaction is listed.
//
// A tx is listed while the application's frame that began it (the
// innermost frame the pool's filter takes for the application's, named
// by a frames.Mark) may still be running: a statement on the pool by the
// same goroutine while that frame runs is a bypass. A tx whose frame has
// returned leaves the list when a check finds so (it is a leak, reported
// as one, not a bypass), and a tx begun by a frame at the same mark
// replaces the one listed: the same function, called again from the same
// place, after the first call returned without ending its tx.
type txIndex struct {
	open   atomic.Int64
	shards [16]txShard
	seen   atomic.Int64 // keys in reported
	// reported holds the bypasses already reported, by the address in
	// the tx's frame where it began the tx and the one where that frame
	// made the bypassing call: a repeat is counted, not queued.
	reported sync.Map
}

type txShard struct {
	mu sync.Mutex
	m  map[int64]*tx // each goroutine's newest listed tx, linked to older ones by tx.older
	_  [48]byte      // 64 bytes: neighbouring shards never share a cache line
}

// maxBypassKeys bounds the memory of reported bypasses; past it, repeats
// are queued and the watchdog's own bounded set drops them.
const maxBypassKeys = 4096

// add lists t, begun by the frame t.mark, as an open tx of goroutine g,
// in place of a listed tx of g with the same mark. The txs of one
// goroutine are linked through the txs themselves, so that listing one
// allocates nothing.
func (x *txIndex) add(g int64, t *tx) {
	s := &x.shards[uint64(g)%uint64(len(x.shards))]
	s.mu.Lock()
	if s.m == nil {
		s.m = map[int64]*tx{}
	}
	for u := s.m[g]; u != nil; u = u.older {
		if u.mark == t.mark {
			x.unlinkLocked(s, g, u)
			break
		}
	}
	t.older = s.m[g]
	s.m[g] = t
	t.listed = true
	s.mu.Unlock()
	x.open.Add(1)
}

// remove unlists t, if listed.
func (x *txIndex) remove(g int64, t *tx) {
	s := &x.shards[uint64(g)%uint64(len(x.shards))]
	s.mu.Lock()
	if t.listed {
		x.unlinkLocked(s, g, t)
	}
	s.mu.Unlock()
}

// unlinkLocked takes the listed t out of g's list; s.mu is held.
func (x *txIndex) unlinkLocked(s *txShard, g int64, t *tx) {
	if head := s.m[g]; head == t {
		if t.older == nil {
			delete(s.m, g)
		} else {
			s.m[g] = t.older
		}
	} else {
		for u := head; u != nil; u = u.older {
			if u.older == t {
				u.older = t.older
				break
			}
		}
	}
	t.older, t.listed = nil, false
	x.open.Add(-1)
}

// bypass checks a statement on conn c by goroutine g outside any tx: if
// a frame of g that began a listed tx (not on c, its context not ended)
// still runs, the statement bypasses the oldest such tx, which it
// reports, once per place; txs whose frame returned leave the list.
func (x *txIndex) bypass(p *pool, g int64, c *conn, ctx context.Context, query string) {
	s := &x.shards[uint64(g)%uint64(len(x.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[g] == nil {
		return
	}
	var w frames.Walk
	w.Capture()
	var (
		held *tx
		at   uintptr // the return address into held's frame: its bypassing call
	)
	for t := s.m[g]; t != nil; {
		older := t.older
		switch a, runs := w.Find(t.mark); {
		case !runs:
			x.unlinkLocked(s, g, t)
		case t.c != c && t.begin.Err() == nil && a > t.at:
			// A tx whose context has ended is being rolled back by
			// database/sql's own goroutine: it is no longer the
			// application's. And a frame at the Mark calling from a
			// point of its code before the one where it began the tx
			// (a > t.at: the compiler lays a function's code out in
			// source order, loops aside) is a new call of the same
			// function from the same place, not yet at its BEGIN: the
			// tx is an earlier call's leak.
			held, at = t, a
		}
		t = older
	}
	if held == nil {
		return
	}
	e := &track.MisuseEvent{Kind: track.MisuseTxBypass, Query: query, HereGoroutine: g, There: held.res}
	key := [2]uintptr{held.at, at}
	if _, ok := x.reported.Load(key); ok {
		e.Repeat = true
	} else if x.seen.Load() < maxBypassKeys {
		if _, loaded := x.reported.LoadOrStore(key, struct{}{}); loaded {
			e.Repeat = true
		} else {
			x.seen.Add(1)
		}
	}
	if !e.Repeat {
		e.Here.Capture(2)
		e.HereAttrs = p.tracker.ContextAttrs(ctx)
	}
	p.tracker.ReportMisuse(e)
}

// mark lists t for tx_bypass, named by the application's frame that
// began it; it is not listed when no frame is the application's.
func (p *pool) mark(g int64, t *tx) {
	var w frames.Walk
	w.Capture()
	for i, pc := range w.PCs() {
		if !p.appPCs.Get(pc, p.isApp) {
			continue
		}
		if m, ok := w.MarkOf(i); ok {
			t.mark, t.at = m, pc
			p.txs.add(g, t)
		}
		return
	}
}

// isApp reports whether the return address pc is in the application's
// code, by the pool's filter: whether the function whose frame it is in,
// or the innermost function inlined there, is the application's (a
// library's wrapper inlined into the application's function, such as
// (*sql.DB).Begin, leaves the frame the application's). It symbolizes;
// p.appPCs caches it.
func (p *pool) isApp(pc uintptr) bool {
	f := runtime.FuncForPC(pc - 1) // the call instruction: a return address may start the next line
	if f == nil {
		return false
	}
	if p.appFunc(f.Name()) {
		return true
	}
	if !frames.Physical {
		return false // a walk by runtime.Callers has an address for each inlined function
	}
	outer := runtime.FuncForPC(f.Entry()) // no inlining at a function's entry
	return outer != nil && p.appFunc(outer.Name())
}

func (p *pool) appFunc(name string) bool {
	return name != "" && !p.filter.IsLibrary(stack.Frame{Function: name})
}

// check runs before a statement (or checkout) on c: a goroutine bypassing
// its own tx, and statements issued over open rows. ctx is the
// statement's: a report takes its context attributes (only then). Small
// enough to inline: without open rows or listed txs it costs a few loads.
func (c *conn) check(ctx context.Context, query string) {
	// Txs are listed only when tx_bypass is on; checkAll checks that,
	// and c.tx.
	if c.openRows > 0 || c.p.txs.open.Load() > 0 {
		c.checkAll(ctx, query)
	}
}

// checkAll is check's body, for a conn with open rows or a pool with
// listed txs.
func (c *conn) checkAll(ctx context.Context, query string) {
	c.checkRows(ctx, query)
	if p := c.p; c.tx == nil && p.detect&detectBypass != 0 && p.txs.open.Load() > 0 {
		p.txs.bypass(p, goid.Get(), c, ctx, query)
	}
}

// checkRows reports a statement issued over open rows of c: by another
// goroutine (concurrent), or by the rows' own (open_rows).
func (c *conn) checkRows(ctx context.Context, query string) {
	p := c.p
	if c.openRows > 0 {
		c.explained = true // the driver may refuse or lose the conn: see failed
	}
	if c.openRows > 0 && p.detect&(detectConcurrent|detectOpenRows) != 0 {
		// The conn's open rows, oldest first: the oldest queried by
		// another goroutine makes it concurrent use; otherwise the
		// oldest of the goroutine's own makes it open_rows.
		g := goid.Get()
		kind, on, there := track.MisuseOpenRows, p.detect&detectOpenRows != 0, c.oldest
		for r := c.oldest; r != nil; r = r.newer {
			if r.res.Goroutine() != g {
				kind, on, there = track.MisuseConcurrent, p.detect&detectConcurrent != 0, r
				break
			}
		}
		if on && there != nil {
			c.report(ctx, &track.MisuseEvent{Kind: kind, Query: query, HereGoroutine: g, There: there.res})
		}
	}
}

// failed runs after a driver call on c returned err (not ErrSkip): lock
// conflicts, and conns that died.
//
// A conn dies once: the first bad connection of a checkout is counted
// (tracker.ConnDied) and, for a held conn, reported as conn_killed; the
// bad connections after it on the same checkout (the deferred Rollback
// of a killed tx) are its echoes, neither counted nor reported. And a
// bad connection is a death only when the server or the network killed
// the conn, not when the driver had its own reason to give it up:
//   - a statement or rows of this checkout ended with their context (or
//     the tx's): drivers close the conn of a cancelled statement
//     (go-sql-driver/mysql, pgx) or mark it bad (lib/pq);
//   - a statement of this checkout was issued over open rows:
//     go-sql-driver/mysql's "busy buffer" and pgx's "conn busy" reach
//     database/sql as driver.ErrBadConn, and a MySQL conn whose protocol
//     went out of sync is closed by the driver ("invalid connection").
//
// The concurrent or open_rows report names that misuse instead.
func (c *conn) failed(ctx context.Context, err error, query string) {
	p := c.p
	if ctx.Err() != nil || (c.tx != nil && c.tx.begin.Err() != nil) {
		c.explained = true
	}
	cl := errclass.Classify(err)
	switch {
	case cl.IsLock() && p.detect&detectLock != 0:
		e := &track.MisuseEvent{Kind: track.MisuseLockConflict, Class: cl.String(), Query: query, HereGoroutine: goid.Get()}
		if c.tx != nil {
			e.Self = c.tx.res
		}
		c.report(ctx, e)
	case cl == errclass.ClassBadConn && !c.explained:
		c.explained = true
		idle := clock.Since(c.lastUsed)
		state := track.DeathIdle
		holder := c.res
		switch {
		case c.tx != nil:
			state, holder = track.DeathInTx, c.tx.res
		case c.openRows > 0 || c.stmts > 0:
			state = track.DeathHeld
		}
		p.tracker.ConnDied(state, idle)
		if state != track.DeathIdle && p.detect&detectKilled != 0 && holder != nil {
			c.report(ctx, &track.MisuseEvent{Kind: track.MisuseConnKilled, Class: cl.String(), Query: query, HereGoroutine: goid.Get(),
				There: holder, Age: holder.Elapsed(), Idle: idle, State: state})
		}
	}
}

// report captures the caller's stack and the context attributes of ctx,
// the statement's, and hands the event to the tracker.
func (c *conn) report(ctx context.Context, e *track.MisuseEvent) {
	e.Here.Capture(2)
	e.HereAttrs = c.p.tracker.ContextAttrs(ctx)
	c.p.tracker.ReportMisuse(e)
}

// diedIdle counts a conn found dead when taken out of the pool: its
// ResetSession failed with err. As in failed, that is no death when it
// is explained: by the conn's last checkout (lastExplained: the driver
// gave the conn up then, or its death was counted; pgx, say, refuses a
// conn left inside a transaction by a cancelled statement), or by ctx,
// the checkout's, having ended (the driver's liveness check gave up).
func (c *conn) diedIdle(ctx context.Context, err error, lastExplained bool) {
	if c.explained || lastExplained || ctx.Err() != nil {
		c.explained = true
		return
	}
	if errclass.Classify(err) == errclass.ClassBadConn {
		c.explained = true
		c.p.tracker.ConnDied(track.DeathIdle, clock.Since(c.lastUsed))
	}
}
