package goid_test

import (
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/goid"
)

func BenchmarkGet(b *testing.B) {
	b.Logf("fast=%v", goid.Fast())
	b.ReportAllocs()
	var s int64
	for b.Loop() {
		s += goid.Get()
	}
	sink = s
}

func BenchmarkGetParallel(b *testing.B) {
	goid.Fast()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var s int64
		for pb.Next() {
			s += goid.Get()
		}
		if s == 42 {
			sink = s
		}
	})
}

// BenchmarkSlow measures the fallback: parsing runtime.Stack's header.
func BenchmarkSlow(b *testing.B) {
	b.ReportAllocs()
	var s int64
	for b.Loop() {
		s += goid.Slow()
	}
	sink = s
}
