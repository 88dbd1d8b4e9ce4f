package track

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/stack"
)

// release is queued by Close for the watchdog to log.
type release struct {
	kind  Kind
	held  time.Duration
	stack callstack.Stack
	attrs []slog.Attr
}

// watch is the watchdog goroutine.
func (t *Tracker) watch() {
	defer close(t.done)
	defer stopping.Delete(t)
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			t.drainReleases()
			return
		case rel := <-t.releases:
			t.logRelease(rel)
		case it := <-t.misuses:
			t.logMisuse(it)
		case <-tick.C:
			t.Scan()
		}
	}
}

func (t *Tracker) drainReleases() {
	for {
		select {
		case rel := <-t.releases:
			t.logRelease(rel)
		case it := <-t.misuses:
			t.logMisuse(it)
		default:
			return
		}
	}
}

// Scan runs one watchdog pass now: every resource past its kind's
// threshold and not yet reported is reported, within the rate limit (a
// conn checkout counts only its time not held by a tx or rows). The
// watchdog calls Scan on its interval; tests call it with an injected
// clock. Concurrent calls (the watchdog's and a caller's) run one after
// the other.
func (t *Tracker) Scan() {
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	now := t.cfg.Now()
	nowNS := clock.Of(now)
	var dropped int64
	hidden, withheld := t.returnsHidden(), false
	snaps := t.collectOldest(nowNS, t.scanHorizon(), func(r *Resource) bool {
		th := t.cfg.Thresholds[r.kind]
		if th <= 0 || r.reported || r.covered() || r.uncoveredAge(nowNS) < th {
			return false
		}
		if hidden && r.kind == KindConn {
			withheld = true // not marked: reported once a return is seen
			return false
		}
		r.reported = true
		if !t.allow(now) {
			r.suppressed = true
			dropped++
			return false
		}
		return true
	})
	t.suppressedTotal.Add(dropped)
	// The first report logged says how many were dropped before it; those
	// dropped in this pass are told by the next one.
	if len(snaps) > 0 {
		snaps[0].suppressed, t.suppressed = t.suppressed, 0
	}
	t.suppressed += dropped
	if withheld {
		t.warnHidden()
	}
	for i := range snaps {
		t.reportLeak(&snaps[i], now)
	}
}

// scanMargin allows for resources inserted slightly out of order (a
// start taken before the shard's lock, or copied from the checkout).
const scanMargin = time.Second

// scanHorizon is the age below which no resource can be reported: the
// smallest enabled threshold, less scanMargin.
func (t *Tracker) scanHorizon() time.Duration {
	h := time.Duration(-1)
	for _, k := range Kinds {
		if th := t.cfg.Thresholds[k]; th > 0 && (h < 0 || th < h) {
			h = th
		}
	}
	if h < 0 {
		return 1<<63 - 1 // nothing is reported: visit nothing
	}
	return max(h-scanMargin, 0)
}

// collectOldest is collect for the watchdog: it walks each shard from its
// oldest resource and stops at the first younger than horizon, so a pass
// over 100,000 young transactions touches a handful of them.
func (t *Tracker) collectOldest(now int64, horizon time.Duration, pick func(*Resource) bool) []snapshot {
	var out []snapshot
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for r := s.tail; r != nil; r = r.prev {
			if time.Duration(now-r.start) < horizon {
				break
			}
			if !pick(r) {
				continue
			}
			out = append(out, r.snapshot())
		}
		s.mu.Unlock()
	}
	return out
}

// allow is a token bucket: ReportBurst reports at once, then
// ReportsPerMinute per minute.
func (t *Tracker) allow(now time.Time) bool {
	if el := now.Sub(t.lastRefill); el > 0 {
		t.tokens += el.Minutes() * float64(t.cfg.ReportsPerMinute)
		t.tokens = min(t.tokens, float64(t.cfg.ReportBurst))
		t.lastRefill = now
	}
	if t.tokens < 1 {
		return false
	}
	t.tokens--
	return true
}

func (t *Tracker) reportLeak(s *snapshot, now time.Time) {
	defer t.recoverPanic()
	rep := t.describe(s, now)
	t.reported.Add(1)
	t.reportedByKind[rep.Kind].Add(1)
	msg := fmt.Sprintf("sqlwatch: %s open for %s (threshold %s), %s %s",
		rep.Kind.noun(), round(rep.Age), rep.Threshold, rep.Kind.verb(), rep.Origin)
	if rep.Kind == KindConn {
		msg = fmt.Sprintf("sqlwatch: connection checked out for %s (threshold %s) at %s",
			round(rep.Age), rep.Threshold, rep.Origin)
	}
	attrs := []slog.Attr{
		slog.String("kind", rep.Kind.String()),
		slog.String("db_name", rep.DBName),
		slog.String("age", round(rep.Age).String()),
		slog.String("threshold", rep.Threshold.String()),
		slog.String("origin", rep.Origin),
		slog.String("func", rep.Func),
		slog.Any("stack", frameStrings(rep.Stack)),
		slog.Int64("goroutine", rep.Goroutine),
	}
	if rep.Kind == KindTx || rep.Kind == KindConn {
		attrs = append(attrs, slog.Int64("statements", rep.Statements))
	}
	attrs = append(attrs, slog.String("last_query", rep.LastQuery))
	if rep.Suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", rep.Suppressed))
	}
	attrs = append(attrs, rep.Attrs...)
	t.log(slog.LevelWarn, msg, attrs)
	t.callback(rep)
}

// announce has the release line of a reported leak logged: queued for
// the watchdog, or, once Stop has begun, logged at once (logLate). A
// full queue drops the line and counts it.
func (t *Tracker) announce(rel *release) {
	t.stopMu.RLock()
	if !t.stopped {
		select {
		case t.releases <- rel:
		default:
			t.dropped.Add(1)
		}
		t.stopMu.RUnlock()
		return
	}
	t.stopMu.RUnlock()
	t.logLate(rel)
}

// logLate logs a release line after Stop, when there is no watchdog: on
// a goroutine of its own, waited for stopGrace at most, after which what
// is still running is counted as dropped. (guard cannot serve: its grace
// belongs to Stop, which has ended.)
func (t *Tracker) logLate(rel *release) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.recoverPanic()
		rep, msg, attrs := t.releaseLine(rel)
		func() {
			defer t.recoverPanic()
			t.cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, msg, attrs...)
		}()
		if t.cfg.OnReport != nil {
			t.cfg.OnReport(rep)
		}
	}()
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.dropped.Add(1)
	}
}

func (t *Tracker) logRelease(rel *release) {
	defer t.recoverPanic()
	rep, msg, attrs := t.releaseLine(rel)
	t.log(slog.LevelInfo, msg, attrs)
	t.callback(rep)
}

// releaseLine builds the report and the line of a release, and counts
// it.
func (t *Tracker) releaseLine(rel *release) (Report, string, []slog.Attr) {
	rep := Report{Released: true, Kind: rel.kind, DBName: t.cfg.DBName, Age: rel.held, Held: rel.held, Threshold: t.Threshold(rel.kind), Attrs: rel.attrs}
	t.resolve(&rep, &rel.stack)
	t.released.Add(1)
	msg := fmt.Sprintf("sqlwatch: leaked %s released after %s, %s %s", rel.kind.noun(), round(rel.held), rel.kind.verb(), rep.Origin)
	attrs := []slog.Attr{
		slog.String("kind", rep.Kind.String()),
		slog.String("db_name", rep.DBName),
		slog.String("origin", rep.Origin),
		slog.String("func", rep.Func),
		slog.String("held", round(rel.held).String()),
	}
	return rep, msg, append(attrs, rel.attrs...)
}

func (t *Tracker) log(level slog.Level, msg string, attrs []slog.Attr) {
	t.guard(func() { t.cfg.Logger.LogAttrs(context.Background(), level, msg, attrs...) })
}

func (t *Tracker) callback(rep Report) {
	if t.cfg.OnReport == nil {
		return
	}
	t.guard(func() { t.cfg.OnReport(rep) })
}

// stopGrace bounds how long Stop (DB.Close) waits for a logger or
// callback that does not return.
const stopGrace = 2 * time.Second

// stopping maps a *Tracker or *Monitor whose Stop found a logger or
// callback still running to the time.Time its grace period ends.
var stopping sync.Map

// guard runs f, a logger or callback (the application's code), for the
// watchdog and waits for it; a panic in f is recovered and counted. f
// runs on a goroutine of its own so that a logger that blocks cannot
// block Stop: once Stop has begun, the watchdog waits for such calls at
// most stopGrace in all, then counts what is left as dropped and lets
// Stop return; a blocked call keeps its goroutine until it returns.
func (t *Tracker) guard(f func()) { t.guardFor(t, t.stop, f) }

// guardFor is guard for owner (the tracker, or a [Monitor] of its pool),
// whose Stop closes stop.
func (t *Tracker) guardFor(owner any, stop <-chan struct{}, f func()) {
	if v, ok := stopping.Load(owner); ok && !time.Now().Before(v.(time.Time)) {
		t.dropped.Add(1)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.recoverPanic()
		f()
	}()
	select {
	case <-done:
		return
	case <-stop:
	}
	deadline := time.Now().Add(stopGrace)
	if v, loaded := stopping.LoadOrStore(owner, deadline); loaded {
		deadline = v.(time.Time)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.dropped.Add(1)
	}
}

// recoverPanic keeps a panic in a callback, a logger or sqlwatch itself
// away from the watchdog; it is counted in Stats.Panics.
func (t *Tracker) recoverPanic() {
	if r := recover(); r != nil {
		t.panics.Add(1)
	}
}

// round keeps durations readable: milliseconds below a minute, seconds
// above.
func round(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

func frameStrings(frames []stack.Frame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.Function + " " + f.Location()
	}
	return out
}
