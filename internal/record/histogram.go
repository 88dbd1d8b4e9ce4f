package record

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/internal/goid"
	"github.com/sqlwatch/sqlwatch/internal/nanosum"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// histogram is a Prometheus histogram of durations made for the hot path.
// client_golang's Histogram costs twice as much per observation and, with
// every goroutine updating the same words, far more under contention, so
// the recorder keeps its own:
//
//   - bucket bounds in nanoseconds, compared as integers;
//   - the sum in integer nanoseconds (one atomic add, no compare-and-swap
//     loop on a float), moved at each collection into a total that does
//     not wrap (internal/nanosum);
//   - the counts spread over shards chosen by goroutine id, each on cache
//     lines of its own, so that goroutines rarely write the same line.
//
// Collect merges the shards into a constant histogram. A scrape that runs
// during an observation may see its bucket count without its sum; the
// next scrape sees both.
type histogram struct {
	desc   *prometheus.Desc
	labels []string        // label values, in desc's order
	bounds []time.Duration // upper bounds (inclusive)
	upper  []float64       // the same in seconds
	shards [histShards]histShard

	// foldMu guards folded: what each collection moved out of the
	// shards' integer sums, so that they never wrap (292 years of
	// accumulated time, a hundred days for a thousand transactions
	// always open); exact while it fits an int64 (internal/nanosum).
	foldMu sync.Mutex
	folded nanosum.Sum
}

const (
	histShards = 8
	maxBuckets = track.MaxBuckets // bounds, not counting +Inf
)

type histShard struct {
	counts [maxBuckets + 1]atomic.Uint64 // the last one is +Inf
	sum    atomic.Int64                  // nanoseconds
	_      [48]byte                      // 192 bytes: three cache lines
}

// newHistogram returns a histogram of desc with the given bucket upper
// bounds in seconds (at most maxBuckets, increasing) and label values.
func newHistogram(desc *prometheus.Desc, buckets []float64, labels ...string) *histogram {
	if len(buckets) > maxBuckets {
		panic("metrics: too many buckets") // a programming error in this package
	}
	return &histogram{desc: desc, labels: labels, upper: slices.Clone(buckets), bounds: toDurations(buckets)}
}

// observe records one duration. It takes no lock and does not allocate.
func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	s := &h.shards[uint64(goid.Get())%histShards]
	s.counts[i].Add(1)
	s.sum.Add(int64(d))
}

// metric returns the histogram's current value as a constant metric.
func (h *histogram) metric() prometheus.Metric { return h.metricPlus(nil, 0) }

// metricPlus is metric with more observations added: extra holds counts
// per bucket (not cumulative, as h's own; nil for none) with the same
// bounds, and extraSum their sum in seconds.
func (h *histogram) metricPlus(extra []uint64, extraSum float64) prometheus.Metric {
	counts, sum := h.totals(extra, extraSum)
	return ConstHistogram(h.desc, h.upper, counts[:len(h.upper)+1], sum, h.labels...)
}

// totals returns the counts per bucket (not cumulative) and the sum in
// seconds, extra and extraSum added as for metricPlus.
func (h *histogram) totals(extra []uint64, extraSum float64) (counts [maxBuckets + 1]uint64, sum float64) {
	for j, n := range extra {
		if j < len(counts) {
			counts[j] += n
		}
	}
	h.foldMu.Lock()
	for i := range h.shards {
		s := &h.shards[i]
		for j := range len(h.bounds) + 1 {
			counts[j] += s.counts[j].Load()
		}
		h.folded.Add(s.sum.Swap(0))
	}
	sum = h.folded.Seconds() + extraSum
	h.foldMu.Unlock()
	return counts, sum
}

// histogram returns h's current value, extra and extraSum added as for
// metricPlus.
func (h *histogram) histogram(extra []uint64, extraSum float64) Histogram {
	counts, sum := h.totals(extra, extraSum)
	return Histogram{Bounds: slices.Clone(h.upper), Counts: slices.Clone(counts[:len(h.upper)+1]), Sum: sum}
}

// ConstHistogram builds a constant histogram from counts per bucket (not
// cumulative; one more than upper, the last above every bound) and their
// sum in seconds.
func ConstHistogram(desc *prometheus.Desc, upper []float64, counts []uint64, sum float64, labels ...string) prometheus.Metric {
	cumulative := make(map[float64]uint64, len(upper))
	var n uint64
	for j, ub := range upper {
		n += counts[j]
		cumulative[ub] = n
	}
	n += counts[len(upper)]
	return prometheus.MustNewConstHistogram(desc, n, sum, cumulative, labels...)
}
