package track

import (
	"log/slog"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkOpenClose is the tracker's share of every checkout.
func BenchmarkOpenClose(b *testing.B) {
	t, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Stop()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := t.Open(KindConn, 0)
			r.Note("SELECT 1")
			t.Close(r)
		}
	})
}

// BenchmarkOpenCloseHeld is the tracker's share of a query on a fresh
// checkout (its rows cover the conn and note the statement on it) and of
// a tx on it: what a statement costs when a tx or rows holds the conn.
func BenchmarkOpenCloseHeld(b *testing.B) {
	t, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Stop()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var conn, rows Resource
		for pb.Next() {
			c := t.OpenIn(&conn, KindConn, 0)
			t.Close(t.OpenLike(KindRows, Opening{Into: &rows, Like: c, Holder: c, Query: "SELECT 1", NoteHolder: true}, 0))
			tx := t.OpenLike(KindTx, Opening{Like: c, Holder: c}, 0)
			tx.Note("UPDATE x SET n = 1")
			t.Close(tx)
			t.Close(c)
		}
	})
}

// BenchmarkScan100k is one watchdog pass over 100,000 open transactions,
// none past its threshold (the common case: nothing to symbolize). The
// budget is 50 ms.
func BenchmarkScan100k(b *testing.B) {
	t, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Stop()
	rs := make([]*Resource, 100_000)
	for i := range rs {
		rs[i] = t.Open(KindTx, 0)
	}
	b.ResetTimer()
	for b.Loop() {
		t.Scan()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pass")
	for _, r := range rs {
		t.Close(r)
	}
}

// TestResourceSize holds the memory of one tracked resource to the budget
// of 512 bytes, measured both as the struct's size and as heap growth per
// open resource.
func TestResourceSize(t *testing.T) {
	if n := unsafe.Sizeof(Resource{}); n > 512 {
		t.Errorf("Resource is %d bytes; the budget is 512", n)
	}
	tr, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	const n = 20_000
	rs := make([]*Resource, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		rs = append(rs, tr.Open(KindTx, 0))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d bytes (struct) / %.0f bytes (heap) per open resource", unsafe.Sizeof(Resource{}), per)
	if per > 512 {
		t.Errorf("%.0f bytes of heap per open resource; the budget is 512", per)
	}
	for _, r := range rs {
		tr.Close(r)
	}
}

// TestTrackerSize holds the memory a pool's tracker keeps, with more
// duration slots and buckets than the driver configures (6 slots), to
// 96 KiB: a process may
// open many pools, and the garbage collector scans what a tracker keeps
// on every cycle (its queues once held about 1 MB of values).
func TestTrackerSize(t *testing.T) {
	cfg := Config{
		Logger: slog.New(slog.DiscardHandler), Interval: time.Hour,
		DurationSlots: 8, DurationBuckets: make([]time.Duration, MaxBuckets),
		HoldBuckets: make([]time.Duration, MaxBuckets),
	}
	for i := range MaxBuckets {
		cfg.DurationBuckets[i] = time.Duration(i+1) * time.Millisecond
		cfg.HoldBuckets[i] = time.Duration(i+1) * time.Second
	}
	const n = 20
	ts := make([]*Tracker, 0, n)
	var before, after runtime.MemStats
	runtime.GC() // twice: pooled resources of earlier tests go in two cycles
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		tr, err := NewTracker(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tr)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	t.Logf("%.0f bytes of heap per tracker", per)
	if per > 96<<10 {
		t.Errorf("%.0f bytes of heap per tracker; the budget is 96 KiB", per)
	}
	for _, tr := range ts {
		tr.Stop()
	}
}

// BenchmarkNote is the tracker's share of every statement on a held
// resource: a short text, and a text longer than QueryLimit (which is
// cut, and copied).
func BenchmarkNote(b *testing.B) {
	t, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Stop()
	long := "INSERT INTO orders (id, customer_id, created_at, updated_at, status, total, currency, shipping_address, billing_address, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status"
	for _, q := range []struct{ name, text string }{{"short", "SELECT 1"}, {"long", long}} {
		b.Run(q.name, func(b *testing.B) {
			r := t.Open(KindConn, 0)
			defer t.Close(r)
			b.ReportAllocs()
			for b.Loop() {
				r.Note(q.text)
			}
		})
	}
}
