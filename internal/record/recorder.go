// Package record keeps the hot-path metrics of a pool (statement and
// transaction durations, errors by class) for package metrics' collector:
// the driver records into a pool's [Recorder] only once a collector for
// the pool is registered; before that the hot path pays one atomic load.
package record

import (
	"database/sql/driver"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sqlwatch/sqlwatch/internal/errclass"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Op is a driver operation, the op label of sqlwatch_statement_duration_seconds
// and sqlwatch_errors_total.
type Op uint8

// The operations.
const (
	OpExec Op = iota
	OpQuery
	OpPrepare
	OpBegin
	OpCommit
	OpRollback
	numOps
)

var opNames = [numOps]string{"exec", "query", "prepare", "begin", "commit", "rollback"}

// String returns the op label value.
func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "unknown"
}

// Buckets, in seconds. Statements: from half a millisecond to a minute.
// Transactions and checkouts: from a millisecond to ten minutes, since the
// long ones are the point.
var (
	StatementBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	HoldBuckets      = []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 120, 300, 600}
)

// Recorder holds the hot-path metrics of one pool. The driver creates one
// per pool; all methods are safe for concurrent use and take no lock.
type Recorder struct {
	on    atomic.Bool
	since atomic.Int64 // Unix nanoseconds of the first SetEnabled(true); 0 before

	stmt      [numOps]*histogram // sqlwatch_statement_duration_seconds, by op
	tx        [3]*histogram      // sqlwatch_tx_duration_seconds, by outcome
	errors    *prometheus.CounterVec
	errorsHot [numOps][errclass.NumClasses]prometheus.Counter
}

// TxOutcome is the outcome label of sqlwatch_tx_duration_seconds.
type TxOutcome uint8

// The outcomes.
const (
	TxCommit TxOutcome = iota
	TxRollback
	TxError
)

// NewRecorder returns the Recorder of a pool named dbName.
func NewRecorder(dbName string) *Recorder {
	labels := prometheus.Labels{"db_name": dbName}
	stmt := prometheus.NewDesc("sqlwatch_statement_duration_seconds",
		"Duration of driver operations, by operation.", []string{"op"}, labels)
	tx := prometheus.NewDesc("sqlwatch_tx_duration_seconds",
		"Duration of transactions from begin to commit or rollback, by outcome.", []string{"outcome"}, labels)
	r := &Recorder{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "sqlwatch_errors_total",
			Help:        "Errors returned by the driver, by operation and class.",
			ConstLabels: labels,
		}, []string{"op", "class"}),
	}
	for op := range numOps {
		r.stmt[op] = newHistogram(stmt, StatementBuckets, op.String())
		for c := range errclass.Class(errclass.NumClasses) {
			r.errorsHot[op][c] = r.errors.WithLabelValues(op.String(), c.String())
		}
	}
	for i, o := range []string{"commit", "rollback", "error"} {
		r.tx[i] = newHistogram(tx, HoldBuckets, o)
	}
	return r
}

// Describe sends the descriptors of the recorder's metrics.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.stmt[0].desc
	ch <- r.tx[0].desc
	r.errors.Describe(ch)
}

// Collect sends the recorder's metrics; the statement durations add
// those the pool's tracker recorded (see track.Resource.NoteTimed).
func (r *Recorder) Collect(ch chan<- prometheus.Metric, t *track.Tracker) {
	for op, h := range r.stmt {
		_, counts, sum := t.Durations(op)
		ch <- h.metricPlus(counts, sum)
	}
	for _, h := range r.tx {
		ch <- h.metric()
	}
	r.errors.Collect(ch)
}

// SetEnabled turns recording on or off; the collector turns it on when
// it is described or collected. The first time it turns recording on is
// the recorder's [Recorder.Since].
func (r *Recorder) SetEnabled(on bool) {
	if on && r.since.Load() == 0 {
		r.since.CompareAndSwap(0, time.Now().UnixNano())
	}
	r.on.Store(on)
}

// Since returns when recording was first turned on (the zero Time if it
// never was): the start of every cumulative value the recorder and its
// pool's tracker export, since nothing is recorded for the pool before.
// Recording turned off and on again later leaves it as it is: the totals
// keep counting from it, without what happened while recording was off.
func (r *Recorder) Since() time.Time {
	if n := r.since.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Enabled reports whether a collector for the pool is registered; the
// driver skips timing otherwise.
func (r *Recorder) Enabled() bool { return r != nil && r.on.Load() }

// Done records an operation that lasted d and returned err.
// Cancellations are errors too; driver.ErrSkip is not (database/sql
// retries another way) and is not recorded.
func (r *Recorder) Done(op Op, d time.Duration, err error) {
	if err == driver.ErrSkip {
		return
	}
	r.stmt[op].observe(d)
	r.Failed(op, err)
}

// Failed counts err (when not nil or driver.ErrSkip) in
// sqlwatch_errors_total: Done without the duration, for an operation whose
// duration the driver records through the tracker (track.Resource.NoteTimed
// in the slot numbered op).
func (r *Recorder) Failed(op Op, err error) {
	if err != nil && err != driver.ErrSkip {
		r.errorsHot[op][errclass.Classify(err)].Inc()
	}
}

// NumOps is the number of operations: the tracker slots the driver
// records statement durations in (track.Config.DurationSlots).
const NumOps = int(numOps)

// StatementBounds returns StatementBuckets as durations: the bounds of
// those slots (track.Config.DurationBuckets).
func StatementBounds() []time.Duration { return toDurations(StatementBuckets) }

// TxEnded records a transaction that lasted d.
func (r *Recorder) TxEnded(o TxOutcome, d time.Duration) { r.tx[o].observe(d) }

// HoldBounds returns HoldBuckets as durations: the bounds of the hold-time
// histogram the driver has each pool's tracker keep (track.Config's
// HoldBuckets), which the Collector exports as sqlwatch_conn_hold_seconds.
func HoldBounds() []time.Duration { return toDurations(HoldBuckets) }

func toDurations(seconds []float64) []time.Duration {
	out := make([]time.Duration, len(seconds))
	for i, b := range seconds {
		out[i] = time.Duration(math.Round(b * float64(time.Second)))
	}
	return out
}

// Totals is what the Collect methods export, as counts and sums, for
// exporters without pre-aggregated histograms (metrics/otelmetrics). It
// reads the same atomics as Collect, at collection time only.
type Totals struct {
	Statements [numOps]CountSum                    // by Op, the tracker's added
	Tx         [3]CountSum                         // by TxOutcome
	Errors     [numOps][errclass.NumClasses]uint64 // by Op and errclass.Class
}

// CountSum is a histogram's count and sum in seconds.
type CountSum struct {
	Count uint64
	Sum   float64
}

// TxOutcomes are the outcome label values, indexed by TxOutcome.
var TxOutcomes = [3]string{"commit", "rollback", "error"}

// Totals returns the recorder's totals; t's statement durations are added
// as in Collect.
func (r *Recorder) Totals(t *track.Tracker) *Totals {
	out := new(Totals)
	for op, h := range r.stmt {
		_, extra, extraSum := t.Durations(op)
		counts, sum := h.totals(extra, extraSum)
		out.Statements[op] = CountSum{countOf(counts[:]), sum}
	}
	for i, h := range r.tx {
		counts, sum := h.totals(nil, 0)
		out.Tx[i] = CountSum{countOf(counts[:]), sum}
	}
	var m dto.Metric
	for op := range r.errorsHot {
		for c, ctr := range r.errorsHot[op] {
			m.Reset()
			if ctr.Write(&m) == nil {
				out.Errors[op][c] = uint64(m.GetCounter().GetValue())
			}
		}
	}
	return out
}

// Histogram is one of the duration histograms the Collect methods
// export, for exporters that build their own (metrics/otelmetrics):
// upper bounds in seconds (inclusive, increasing), the count in each
// bucket (not cumulative; one more than Bounds, the last above them all)
// and the sum in seconds. Its slices are the caller's.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Sum    float64
}

// Count returns the number of observations, the sum of h.Counts.
func (h Histogram) Count() uint64 { return countOf(h.Counts) }

// Histograms returns the statement durations by Op, t's added as in
// Collect, and the transaction durations by TxOutcome. It reads the same
// atomics as Collect, at collection time only.
func (r *Recorder) Histograms(t *track.Tracker) (stmt [numOps]Histogram, tx [3]Histogram) {
	for op, h := range r.stmt {
		_, extra, extraSum := t.Durations(op)
		stmt[op] = h.histogram(extra, extraSum)
	}
	for i, h := range r.tx {
		tx[i] = h.histogram(nil, 0)
	}
	return stmt, tx
}

// HistogramOf returns a tracker histogram (bounds as durations, counts and
// sum as [track.Tracker.HoldHistogram] returns them) as a Histogram.
func HistogramOf(bounds []time.Duration, counts []uint64, sum float64) Histogram {
	upper := make([]float64, len(bounds))
	for i, b := range bounds {
		upper[i] = b.Seconds()
	}
	return Histogram{Bounds: upper, Counts: slices.Clone(counts), Sum: sum}
}

// CountSumOf returns the count and sum of a histogram given as Collect's
// inputs are (tracker histograms: counts per bucket and their sum).
func CountSumOf(counts []uint64, sum float64) CountSum { return CountSum{countOf(counts), sum} }

func countOf(counts []uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}
