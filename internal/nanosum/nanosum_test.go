package nanosum

import (
	"math"
	"testing"
	"time"
)

func TestExactWhileItFits(t *testing.T) {
	var s Sum
	for range 8000 {
		s.Add(int64(time.Millisecond))
	}
	s.Add(-5) // counts as zero
	if got := s.Seconds(); got != 8 {
		t.Fatalf("8000 × 1ms = %v s; want exactly 8", got)
	}
	var parts Sum
	for _, d := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		var p Sum
		p.Add(int64(d))
		parts.AddSum(p)
	}
	if got := parts.Seconds(); got != 0.3 {
		t.Fatalf("0.1 s + 0.2 s = %v; want exactly 0.3 (summed in nanoseconds)", got)
	}
}

func TestDoesNotWrap(t *testing.T) {
	const long = 200 * 365 * 24 * time.Hour // two of them overflow int64 nanoseconds
	var s, other Sum
	s.Add(int64(long))
	s.Add(int64(long))
	other.Add(int64(long))
	other.Add(int64(long))
	s.AddSum(other)
	if got, want := s.Seconds(), 4*long.Seconds(); math.Abs(got-want) > 1e-9*want {
		t.Fatalf("4 × 200 years = %v s; want %v s", got, want)
	}
}
