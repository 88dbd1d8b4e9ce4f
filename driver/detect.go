package driver

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/goid"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
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
	detectAll = detectBypass | detectConcurrent | detectOpenRows | detectLock | detectKilled
)

var detectorNames = map[string]detectors{
	leak.MisuseTxBypass:     detectBypass,
	leak.MisuseConcurrent:   detectConcurrent,
	leak.MisuseOpenRows:     detectOpenRows,
	leak.MisuseLockConflict: detectLock,
	leak.MisuseConnKilled:   detectKilled,
}

// txIndex finds the open transactions of a goroutine, for tx_bypass. It
// is sharded by goroutine id, so no lock is shared by all goroutines, and
// skipped entirely while no transaction is open.
type txIndex struct {
	open   atomic.Int64
	shards [16]txShard
}

type txShard struct {
	mu sync.Mutex
	m  map[int64]*tx // each goroutine's newest open tx, linked to older ones by tx.older
	_  [48]byte      // 64 bytes: neighbouring shards never share a cache line
}

// add lists t as an open tx of goroutine g. The txs of one goroutine are
// linked through the txs themselves, so that listing one allocates
// nothing.
func (x *txIndex) add(g int64, t *tx) {
	s := &x.shards[uint64(g)%uint64(len(x.shards))]
	s.mu.Lock()
	if s.m == nil {
		s.m = map[int64]*tx{}
	}
	t.older = s.m[g]
	s.m[g] = t
	s.mu.Unlock()
	x.open.Add(1)
}

func (x *txIndex) remove(g int64, t *tx) {
	s := &x.shards[uint64(g)%uint64(len(x.shards))]
	s.mu.Lock()
	found := false
	if head := s.m[g]; head == t {
		found = true
		if t.older == nil {
			delete(s.m, g)
		} else {
			s.m[g] = t.older
		}
	} else {
		for u := head; u != nil; u = u.older {
			if u.older == t {
				u.older, found = t.older, true
				break
			}
		}
	}
	t.older = nil
	s.mu.Unlock()
	if found {
		x.open.Add(-1)
	}
}

// with calls f with the oldest open tx of goroutine g that is not on conn
// c, if any, under the shard's lock: the tx cannot end (and its resource
// be recycled) while f reads it.
func (x *txIndex) with(g int64, c *conn, f func(*leak.Resource)) {
	s := &x.shards[uint64(g)%uint64(len(x.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest *tx
	for t := s.m[g]; t != nil; t = t.older {
		// A tx whose context has ended is being rolled back by
		// database/sql's own goroutine: it is no longer the
		// application's.
		if t.c != c && t.begin.Err() == nil {
			oldest = t
		}
	}
	if oldest != nil {
		f(oldest.res)
	}
}

// check runs before a statement (or checkout) on c: a goroutine bypassing
// its own tx, and statements issued over open rows.
func (c *conn) check(query string) {
	p := c.p
	if c.openRows > 0 {
		c.explained = true // the driver may refuse or lose the conn: see failed
	}
	if c.openRows > 0 && p.detect&(detectConcurrent|detectOpenRows) != 0 {
		// The conn's open rows, oldest first: the oldest queried by
		// another goroutine makes it concurrent use; otherwise the
		// oldest of the goroutine's own makes it open_rows.
		g := goid.Get()
		kind, on, there := leak.MisuseOpenRows, p.detect&detectOpenRows != 0, c.oldest
		for r := c.oldest; r != nil; r = r.newer {
			if r.res.Goroutine() != g {
				kind, on, there = leak.MisuseConcurrent, p.detect&detectConcurrent != 0, r
				break
			}
		}
		if on && there != nil {
			c.report(&leak.MisuseEvent{Kind: kind, Query: query, HereGoroutine: g, There: there.res})
		}
	}
	if c.tx == nil && p.detect&detectBypass != 0 && p.txs.open.Load() > 0 {
		g := goid.Get()
		p.txs.with(g, c, func(t *leak.Resource) {
			e := &leak.MisuseEvent{Kind: leak.MisuseTxBypass, Query: query, HereGoroutine: g, There: t, ThereFuncLives: true}
			e.Here.Capture(2)
			p.tracker.ReportMisuse(e)
		})
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
	cl := metrics.Classify(err)
	switch {
	case cl.IsLock() && p.detect&detectLock != 0:
		e := &leak.MisuseEvent{Kind: leak.MisuseLockConflict, Class: cl.String(), Query: query, HereGoroutine: goid.Get()}
		if c.tx != nil {
			e.Self = c.tx.res
		}
		c.report(e)
	case cl == metrics.ClassBadConn && !c.explained:
		c.explained = true
		idle := clock.Since(c.lastUsed)
		state := leak.DeathIdle
		holder := c.res
		switch {
		case c.tx != nil:
			state, holder = leak.DeathInTx, c.tx.res
		case c.openRows > 0 || c.stmts > 0:
			state = leak.DeathHeld
		}
		p.tracker.ConnDied(state, idle)
		if state != leak.DeathIdle && p.detect&detectKilled != 0 && holder != nil {
			c.report(&leak.MisuseEvent{Kind: leak.MisuseConnKilled, Class: cl.String(), Query: query, HereGoroutine: goid.Get(),
				There: holder, Age: holder.Elapsed(), Idle: idle, State: state})
		}
	}
}

// report captures the caller's stack and hands the event to the tracker.
func (c *conn) report(e *leak.MisuseEvent) {
	e.Here.Capture(2)
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
	if metrics.Classify(err) == metrics.ClassBadConn {
		c.explained = true
		c.p.tracker.ConnDied(leak.DeathIdle, clock.Since(c.lastUsed))
	}
}
