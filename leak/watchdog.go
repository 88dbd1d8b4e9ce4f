package leak

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sqlwatch/sqlwatch/stack"
)

// release is queued by Close for the watchdog to log.
type release struct {
	kind  Kind
	held  time.Duration
	stack stack.Stack
}

// watch is the watchdog goroutine.
func (t *Tracker) watch() {
	defer close(t.done)
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
// threshold and not yet reported is reported, within the rate limit. The
// watchdog calls Scan on its interval; tests call it with an injected
// clock. Scan must not be called concurrently with itself.
func (t *Tracker) Scan() {
	now := t.cfg.Now()
	var dropped int64
	snaps := t.collect(func(r *Resource) bool {
		th := t.cfg.Thresholds[r.kind]
		if th <= 0 || r.reported || now.Sub(r.start) < th || r.covered.Load() > 0 {
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
	for i := range snaps {
		t.reportLeak(&snaps[i], now)
	}
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
	t.log(slog.LevelWarn, msg, attrs)
	t.callback(rep)
}

func (t *Tracker) logRelease(rel release) {
	defer t.recoverPanic()
	rep := Report{Released: true, Kind: rel.kind, DBName: t.cfg.DBName, Age: rel.held, Held: rel.held, Threshold: t.Threshold(rel.kind)}
	t.resolve(&rep, &rel.stack)
	t.released.Add(1)
	msg := fmt.Sprintf("sqlwatch: leaked %s released after %s, %s %s", rel.kind.noun(), round(rel.held), rel.kind.verb(), rep.Origin)
	t.log(slog.LevelInfo, msg, []slog.Attr{
		slog.String("kind", rep.Kind.String()),
		slog.String("db_name", rep.DBName),
		slog.String("origin", rep.Origin),
		slog.String("func", rep.Func),
		slog.String("held", round(rel.held).String()),
	})
	t.callback(rep)
}

func (t *Tracker) log(level slog.Level, msg string, attrs []slog.Attr) {
	defer t.recoverPanic()
	t.cfg.Logger.LogAttrs(context.Background(), level, msg, attrs...)
}

func (t *Tracker) callback(rep Report) {
	if t.cfg.OnReport == nil {
		return
	}
	defer t.recoverPanic()
	t.cfg.OnReport(rep)
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
