// Package clock is sqlwatch's hot-path clock: a monotonic count of
// nanoseconds since the process's clock epoch, read in about a third of
// what time.Now costs where the processor allows it.
//
// Every checkout, statement and transaction reads the clock two or three
// times, so its cost is a large part of sqlwatch's own. On amd64 with an
// invariant time-stamp counter (one that ticks at a constant rate in every
// power state, which CPUID reports), Now reads the counter and converts
// ticks to nanoseconds with a rate calibrated against the runtime's
// monotonic clock; the rate is refined, and the conversion re-anchored,
// about once a second, so the clock never drifts from the runtime's by
// more than a few microseconds. Elsewhere, or built with the tag
// sqlwatch_notsc, Now is time.Since(Epoch).
//
// The values are comparable across goroutines, but two readings on
// different processors may be a few nanoseconds out of order: use [Since]
// or [Between], which never return a negative duration.
package clock

import (
	"time"
)

// Epoch anchors the clock: Now returns the nanoseconds elapsed since
// Epoch, as time.Since(Epoch) would (within a few microseconds).
var Epoch = time.Now()

// Since returns the time elapsed since the reading start, never negative.
func Since(start int64) time.Duration { return Between(start, Now()) }

// Between returns end-start as a duration, or 0 when end is before start.
func Between(start, end int64) time.Duration {
	if end < start {
		return 0
	}
	return time.Duration(end - start)
}

// Time converts a reading to a time.Time (with a monotonic part, as
// Epoch has).
func Time(ns int64) time.Time { return Epoch.Add(time.Duration(ns)) }

// Of converts a time.Time to a reading: the inverse of Time. Tests use it
// to drive code that stores readings from an injected clock.
func Of(t time.Time) int64 { return int64(t.Sub(Epoch)) }

// sinceEpoch is the runtime's monotonic clock, in the same units as Now.
func sinceEpoch() int64 { return int64(time.Since(Epoch)) }
