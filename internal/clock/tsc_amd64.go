//go:build amd64 && gc && !purego && !sqlwatch_notsc

package clock

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// rdtsc returns the processor's time-stamp counter (tsc_amd64.s).
func rdtsc() int64

// cpuid executes CPUID with the given leaf and subleaf (tsc_amd64.s).
func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// invariantTSC reports whether CPUID advertises an invariant TSC
// (leaf 0x80000007, EDX bit 8): constant rate, not stopped in deep
// sleep, the condition for converting ticks with one rate.
func invariantTSC() bool {
	if max, _, _, _ := cpuid(0x80000000, 0); max < 0x80000007 {
		return false
	}
	_, _, _, d := cpuid(0x80000007, 0)
	return d&(1<<8) != 0
}

// conversion maps ticks to nanoseconds: ns = ns0 + (tsc-tsc0)*mul/2^32.
// Values are immutable once published.
type conversion struct {
	tsc0, ns0 int64
	mul       uint64 // nanoseconds per tick, 32.32 fixed point
	limit     int64  // ticks after tsc0 past which the anchor is refreshed
}

var (
	useTSC = invariantTSC()
	// baseTSC and baseNS are the first pair of readings, the baseline
	// of every rate measurement: the longer it gets, the better the rate.
	baseTSC, baseNS = pair()
	conv            atomic.Pointer[conversion]
	refreshing      sync.Mutex
)

const (
	minBaseline = int64(time.Millisecond) // baseline needed before ticks are used
	anchorEvery = int64(time.Second)      // re-anchor interval
)

// Now returns the nanoseconds elapsed since Epoch.
func Now() int64 {
	if !useTSC {
		return sinceEpoch()
	}
	c := conv.Load()
	if c == nil {
		return refresh()
	}
	d := rdtsc() - c.tsc0
	if d < 0 || d > c.limit {
		return refresh()
	}
	hi, lo := bits.Mul64(uint64(d), c.mul)
	return c.ns0 + int64(hi<<32|lo>>32)
}

// pair reads the counter and the runtime clock together: the counter's
// value at the midpoint of two readings around the runtime clock's. It
// retries (a few times) when the two counter readings are far apart, as
// when the goroutine was preempted between them.
func pair() (tsc, ns int64) {
	best := int64(math.MaxInt64)
	for i := range 5 {
		t1 := rdtsc()
		n := sinceEpoch()
		t2 := rdtsc()
		w := t2 - t1
		switch {
		case w >= 0 && w < best:
			best, tsc, ns = w, t1+w/2, n
		case i == 0:
			// The counter went back (another processor's): keep this
			// pair only until a better one, so that one is returned.
			tsc, ns = t1, n
		}
		if best < 2000 {
			break
		}
	}
	return tsc, ns
}

// refresh measures the rate over the whole baseline, publishes a new
// anchor at the runtime clock's reading, and returns it. The step this
// makes is the conversion's error since the last anchor, a microsecond or
// so; Since and Between clamp what it could make negative. One goroutine at a time
// refreshes; the others return the runtime clock's reading meanwhile.
func refresh() int64 {
	if !refreshing.TryLock() {
		return sinceEpoch()
	}
	defer refreshing.Unlock()
	tsc, ns := pair()
	if ns-baseNS < minBaseline || tsc <= baseTSC {
		return ns
	}
	mul := uint64(float64(ns-baseNS) / float64(tsc-baseTSC) * (1 << 32))
	if mul == 0 {
		return ns
	}
	// Anchor again after as long as the baseline was, up to a second: the
	// conversion then never runs longer than the span its rate was
	// measured over, so it stays within about a microsecond of the
	// runtime clock even while the baseline is young.
	span := min(ns-baseNS, anchorEvery)
	limit := int64(float64(span) / (float64(mul) / (1 << 32)))
	conv.Store(&conversion{tsc0: tsc, ns0: ns, mul: mul, limit: limit})
	return ns
}
