// Package nanosum adds up durations without wrapping: exactly, in integer
// nanoseconds, while the total fits an int64 (292 years), and in a float
// of seconds beyond. It is what histogram sums are folded into at each
// collection: the hot path adds integer nanoseconds, which would wrap if
// nothing moved them out.
package nanosum

import "math"

// Sum is a total of nanoseconds; the zero value is zero. It is not safe
// for concurrent use.
type Sum struct {
	ns  int64   // exact part
	sec float64 // what did not fit in ns, in seconds
}

// Add adds ns nanoseconds; a negative value counts as zero.
func (s *Sum) Add(ns int64) {
	if ns <= 0 {
		return
	}
	if s.ns > math.MaxInt64-ns {
		s.sec += float64(s.ns) / 1e9
		s.ns = 0
	}
	s.ns += ns
}

// AddSum adds another total.
func (s *Sum) AddSum(o Sum) {
	s.Add(o.ns)
	s.sec += o.sec
}

// Seconds returns the total in seconds.
func (s Sum) Seconds() float64 { return s.sec + float64(s.ns)/1e9 }
