package clock

import (
	"testing"
	"time"
)

var sink int64

func BenchmarkNow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink += Now()
	}
}

func BenchmarkTimeSince(b *testing.B) {
	for b.Loop() {
		sink += int64(time.Since(Epoch))
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		sink += time.Now().UnixNano()
	}
}

func BenchmarkNowParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var s int64
		for pb.Next() {
			s += Now()
		}
		sink += s
	})
}
