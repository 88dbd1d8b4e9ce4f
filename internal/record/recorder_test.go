package record

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

func TestSince(t *testing.T) {
	r := NewRecorder("orders")
	if !r.Since().IsZero() {
		t.Fatalf("Since before recording = %v; want zero", r.Since())
	}
	r.SetEnabled(false)
	if !r.Since().IsZero() {
		t.Fatal("SetEnabled(false) set Since")
	}
	before := time.Now()
	r.SetEnabled(true)
	first := r.Since()
	if first.Before(before.Add(-time.Millisecond)) || first.After(time.Now()) {
		t.Fatalf("Since = %v; want between %v and now", first, before)
	}
	r.SetEnabled(false)
	r.SetEnabled(true)
	if got := r.Since(); !got.Equal(first) {
		t.Fatalf("Since after off and on = %v; want the first %v", got, first)
	}
}

// TestHistogramsMatchCollect: Histograms gives the buckets, counts and
// sums Collect exports, the tracker's statement durations added.
func TestHistogramsMatchCollect(t *testing.T) {
	tr, err := track.NewTracker(track.Config{DBName: "orders", Interval: time.Hour,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		DurationSlots: NumOps, DurationBuckets: StatementBounds()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	r := NewRecorder("orders")
	r.Done(OpExec, 3*time.Millisecond, nil)
	r.Done(OpExec, 2*time.Second, nil)
	r.TxEnded(TxRollback, 20*time.Millisecond)
	res := tr.Open(track.KindConn, 0)
	res.NoteTimed("SELECT 1", int(OpQuery), 700*time.Microsecond)
	tr.Close(res)

	stmt, tx := r.Histograms(tr)
	got := map[string]Histogram{}
	for op, h := range stmt {
		got["stmt/"+Op(op).String()] = h
	}
	for i, h := range tx {
		got["tx/"+TxOutcomes[i]] = h
	}
	ch := make(chan prometheus.Metric, 100)
	r.Collect(ch, tr)
	close(ch)
	n := 0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		ph := pb.GetHistogram()
		if ph == nil {
			continue
		}
		var k string
		for _, lp := range pb.GetLabel() {
			switch lp.GetName() {
			case "op":
				k = "stmt/" + lp.GetValue()
			case "outcome":
				k = "tx/" + lp.GetValue()
			}
		}
		h, ok := got[k]
		if !ok {
			t.Fatalf("Collect has %s; Histograms does not", k)
		}
		if h.Count() != ph.GetSampleCount() || h.Sum != ph.GetSampleSum() || len(h.Counts) != len(h.Bounds)+1 {
			t.Errorf("%s: count %d, sum %v, %d counts for %d bounds; Collect: count %d, sum %v",
				k, h.Count(), h.Sum, len(h.Counts), len(h.Bounds), ph.GetSampleCount(), ph.GetSampleSum())
		}
		var cum uint64
		for j, b := range ph.GetBucket() {
			cum += h.Counts[j]
			if h.Bounds[j] != b.GetUpperBound() || cum != b.GetCumulativeCount() {
				t.Errorf("%s bucket %d: le=%v cumulative %d; Collect le=%v %d", k, j, h.Bounds[j], cum, b.GetUpperBound(), b.GetCumulativeCount())
			}
		}
		n++
	}
	if n != len(got) {
		t.Fatalf("%d histograms compared; want %d", n, len(got))
	}
	for k, want := range map[string]uint64{"stmt/exec": 2, "stmt/query": 1, "tx/rollback": 1, "stmt/commit": 0} {
		if got[k].Count() != want {
			t.Errorf("%s: count %d; want %d", k, got[k].Count(), want)
		}
	}
	// The slices are the caller's.
	h := got["stmt/exec"]
	h.Bounds[0], h.Counts[0] = 42, 42
	stmt, _ = r.Histograms(tr)
	if stmt[OpExec].Bounds[0] != StatementBuckets[0] || stmt[OpExec].Counts[0] != 0 {
		t.Fatalf("Histograms shares its slices: %v %v", stmt[OpExec].Bounds[:1], stmt[OpExec].Counts[:1])
	}
}

func TestHistogramOf(t *testing.T) {
	counts := []uint64{1, 0, 2}
	h := HistogramOf([]time.Duration{time.Millisecond, time.Second}, counts, 2.5)
	if !slices.Equal(h.Bounds, []float64{.001, 1}) || h.Count() != 3 || h.Sum != 2.5 {
		t.Fatalf("HistogramOf = %+v", h)
	}
	counts[0] = 9
	if h.Counts[0] != 1 {
		t.Fatal("HistogramOf shares counts")
	}
}
