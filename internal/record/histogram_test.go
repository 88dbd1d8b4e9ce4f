package record

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestHistogram(t *testing.T) {
	desc := prometheus.NewDesc("x_seconds", "X.", []string{"op"}, nil)
	buckets := []float64{.001, .01, 1}
	h := newHistogram(desc, buckets, "exec")
	buckets[0] = 42 // the histogram keeps its own copy
	// On a bound counts in that bucket (le is inclusive); a negative
	// duration counts as zero.
	for _, d := range []time.Duration{-5, 0, time.Millisecond, time.Millisecond + 1, 10 * time.Millisecond, time.Second, 2 * time.Second} {
		h.observe(d)
	}
	var m dto.Metric
	if err := h.metric().Write(&m); err != nil {
		t.Fatal(err)
	}
	hg := m.GetHistogram()
	if got := hg.GetSampleCount(); got != 7 {
		t.Fatalf("count = %d; want 7", got)
	}
	wantSum := (time.Millisecond + time.Millisecond + 1 + 10*time.Millisecond + time.Second + 2*time.Second).Seconds()
	if got := hg.GetSampleSum(); got != wantSum {
		t.Fatalf("sum = %v; want %v", got, wantSum)
	}
	want := map[float64]uint64{.001: 3, .01: 5, 1: 6}
	if len(hg.GetBucket()) != len(want) {
		t.Fatalf("%d buckets; want %d", len(hg.GetBucket()), len(want))
	}
	for _, b := range hg.GetBucket() {
		if b.GetCumulativeCount() != want[b.GetUpperBound()] {
			t.Fatalf("bucket le=%v: %d; want %d", b.GetUpperBound(), b.GetCumulativeCount(), want[b.GetUpperBound()])
		}
	}
	if got := m.GetLabel()[0].GetValue(); got != "exec" {
		t.Fatalf("label = %q; want exec", got)
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := newHistogram(prometheus.NewDesc("x_seconds", "X.", nil, nil), StatementBuckets)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.observe(time.Millisecond)
			}
		})
	}
	// Scrapes while observations run must not race (go test -race), and
	// each is a valid histogram that never goes back.
	var last uint64
	for range 10 {
		var m dto.Metric
		if err := h.metric().Write(&m); err != nil {
			t.Fatal(err)
		}
		n := m.GetHistogram().GetSampleCount()
		for _, b := range m.GetHistogram().GetBucket() {
			if b.GetCumulativeCount() > n {
				t.Fatalf("bucket le=%v counts %d, more than the count %d", b.GetUpperBound(), b.GetCumulativeCount(), n)
			}
		}
		if n < last {
			t.Fatalf("count went back from %d to %d", last, n)
		}
		last = n
	}
	wg.Wait()
	var m dto.Metric
	if err := h.metric().Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram().GetSampleCount(); got != 8000 {
		t.Fatalf("count = %d; want 8000", got)
	}
	if got, want := m.GetHistogram().GetSampleSum(), 8.0; got != want {
		t.Fatalf("sum = %v; want %v", got, want)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := newHistogram(prometheus.NewDesc("x_seconds", "X.", nil, nil), StatementBuckets)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.observe(300 * time.Microsecond)
		}
	})
}

func BenchmarkClientGolangHistogramObserve(b *testing.B) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "X.", Buckets: StatementBuckets})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe((300 * time.Microsecond).Seconds())
		}
	})
}

// TestHistogramSumDoesNotWrap: the shards' integer sums are moved into a
// float at each collection, so that sums beyond 292 years (the reach of
// int64 nanoseconds) add up instead of wrapping to a negative number.
func TestHistogramSumDoesNotWrap(t *testing.T) {
	h := newHistogram(prometheus.NewDesc("x_seconds", "X.", nil, nil), []float64{1})
	const long = 200 * 365 * 24 * time.Hour // two of them overflow int64 nanoseconds
	var m dto.Metric
	for range 2 {
		h.observe(long)
		if err := h.metric().Write(&m); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := m.GetHistogram().GetSampleSum(), 2*long.Seconds(); math.Abs(got-want) > 1e-6*want {
		t.Fatalf("sum = %v s; want %v s", got, want)
	}
}
