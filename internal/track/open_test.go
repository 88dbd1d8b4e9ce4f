package track

import (
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/goid"
)

func TestOpenLike(t *testing.T) {
	f := newFixture(t, Config{QueryLimit: 10})
	conn := f.t.Open(KindConn, 0)
	f.clock.add(time.Second)

	// With like: the checkout's start, stack and goroutine; the query as
	// its first statement, truncated.
	rows := f.t.OpenLike(KindRows, Opening{Like: conn, Holder: conn, Query: "SELECT name FROM items"}, 0)
	if !rows.Start().Equal(conn.Start()) || rows.stack != conn.stack || rows.Goroutine() != conn.Goroutine() {
		t.Fatalf("rows opened like the checkout: start %v, stack equal %v; want the checkout's (%v)", rows.Start(), rows.stack == conn.stack, conn.Start())
	}
	if n, q := rows.statementInfo(); n != 1 || q != "SELECT nam…" {
		t.Fatalf("statements, last query = %d, %q; want 1, %q", n, q, "SELECT nam…")
	}

	// Without like: its own stack, and the injected clock (at is ignored
	// when the clock is injected).
	tx := f.t.OpenLike(KindTx, Opening{At: 12345, Query: "UPDATE items SET n = 1"}, 0)
	if !tx.Start().Equal(f.clock.Now()) {
		t.Fatalf("tx start = %v; want the injected clock's %v", tx.Start(), f.clock.Now())
	}
	if tx.flags.Load()&flagWrote == 0 {
		t.Fatal("a tx opened with an UPDATE is not marked as having written")
	}
	if got := f.t.OpenCount(KindRows) + f.t.OpenCount(KindTx); got != 2 {
		t.Fatalf("open rows+tx = %d; want 2", got)
	}
	f.t.Close(rows)
	f.t.Close(tx)
	f.t.Close(conn)
}

func TestOpenLikeTakesTheReading(t *testing.T) {
	tr, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	at := clock.Now() - int64(time.Minute)
	r := tr.OpenLike(KindStmt, Opening{At: at}, 0)
	defer tr.Close(r)
	if got := clock.Of(r.Start()); got != at {
		t.Fatalf("start = %d; want the reading %d", got, at)
	}
	if e := r.Elapsed(); e < time.Minute || e > 2*time.Minute {
		t.Fatalf("Elapsed = %v; want a minute", e)
	}
}

func TestOpenInIsNotRecycled(t *testing.T) {
	f := newFixture(t, Config{})
	var buf Resource
	for i := range 3 {
		r := f.t.OpenIn(&buf, KindConn, 0)
		r.Note("SELECT 1")
		r.shard.mu.Lock()
		r.covers, r.inTx, r.coveredNS = 1, true, int64(time.Second)
		r.shard.mu.Unlock()
		r.flags.Or(flagWrote)
		if n, _ := r.statementInfo(); n != 1 {
			t.Fatalf("checkout %d: statements = %d; want 1 (reset at each open)", i, n)
		}
		if reps := f.t.Snapshot(); len(reps) != 1 || reps[0].Kind != KindConn || reps[0].LastQuery != "SELECT 1" {
			t.Fatalf("checkout %d: snapshot = %+v; want the one conn", i, reps)
		}
		f.t.Close(r)
		if f.t.OpenCount(KindConn) != 0 {
			t.Fatalf("checkout %d: still open after Close", i)
		}
		// The caller's storage never goes to the pool: nothing else
		// may be handed it while the caller keeps it.
		var got []*Resource
		for range 8 {
			p := resources.Get().(*Resource)
			if p == &buf {
				t.Fatalf("checkout %d: the caller's Resource was put in the pool", i)
			}
			got = append(got, p)
		}
		for _, p := range got {
			resources.Put(p)
		}
	}
	// State left by the last checkout (cover, time covered, in tx, flags)
	// does not survive the next open.
	r := f.t.OpenIn(&buf, KindConn, 0)
	if r.covered() || r.inTx || r.coveredNS != 0 || r.flags.Load() != 0 {
		t.Fatalf("covered %v, in tx %v, covered for %dns, flags %b after reopening; want none", r.covered(), r.inTx, r.coveredNS, r.flags.Load())
	}
	f.t.Close(r)
}

func TestHoldHistogram(t *testing.T) {
	f := newFixture(t, Config{HoldBuckets: []time.Duration{time.Millisecond, time.Second}})
	for _, d := range []time.Duration{-time.Second, 0, time.Millisecond, time.Millisecond + 1, time.Minute} {
		f.t.CloseHeld(f.t.Open(KindConn, 0), d)
	}
	f.t.Close(f.t.Open(KindConn, 0)) // not recorded
	bounds, counts, sum := f.t.HoldHistogram()
	if len(bounds) != 2 || len(counts) != 3 {
		t.Fatalf("bounds %v, counts %v; want 2 bounds and 3 counts", bounds, counts)
	}
	if counts[0] != 3 || counts[1] != 1 || counts[2] != 1 {
		t.Fatalf("counts = %v; want [3 1 1] (a negative hold counts as 0; bounds are inclusive)", counts)
	}
	if want := time.Millisecond + time.Millisecond + 1 + time.Minute; !sameSeconds(sum, want) {
		t.Fatalf("sum = %v; want %v", sum, want)
	}
}

// TestSumsDoNotWrap: each merge moves the shards' integer sums into a
// float, so that hold times and statement durations beyond 292 years in
// all (the reach of int64 nanoseconds) add up instead of wrapping.
func TestSumsDoNotWrap(t *testing.T) {
	f := newFixture(t, Config{HoldBuckets: []time.Duration{time.Second}, DurationSlots: 1, DurationBuckets: []time.Duration{time.Second}})
	const long = 200 * 365 * 24 * time.Hour // two of them overflow int64 nanoseconds
	var hold, dur float64
	for range 2 {
		r := f.t.Open(KindConn, 0)
		r.NoteTimed("SELECT 1", 0, long)
		f.t.CloseHeld(r, long)
		_, _, hold = f.t.HoldHistogram()
		_, _, dur = f.t.Durations(0)
	}
	want := 2 * long.Seconds()
	if math.Abs(hold-want) > 1e-6*want || math.Abs(dur-want) > 1e-6*want {
		t.Fatalf("sums: hold %v s, durations %v s; want %v s each", hold, dur, want)
	}
}

func TestHoldBucketsValidated(t *testing.T) {
	for _, b := range [][]time.Duration{
		{time.Second, time.Millisecond},
		make([]time.Duration, MaxBuckets+1),
	} {
		if _, err := NewTracker(Config{HoldBuckets: b}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("NewTracker with hold buckets %v: err = %v; want ErrInvalidConfig", b, err)
		}
	}
}

// TestHolderCovered: a rows or tx opened with a Holder covers the conn
// checkout (which is then not reported on its own) and, for a tx, marks
// it in a transaction, whether the two share a shard (one lock) or not
// (the holder's shard lock besides); once uncovered, it is reported when
// it has been out and uncovered for the threshold.
func TestHolderCovered(t *testing.T) {
	for _, sameShard := range []bool{true, false} {
		f := newFixture(t, Config{})
		conn := f.t.Open(KindConn, 0)
		open := func(k Kind) *Resource {
			if sameShard {
				return f.t.OpenLike(k, Opening{Holder: conn}, 0)
			}
			// Open from a goroutine whose id falls in another shard.
			for {
				ch := make(chan *Resource)
				go func() {
					if goid.Get()%numShards == conn.goid%numShards {
						ch <- nil
						return
					}
					ch <- f.t.OpenLike(k, Opening{Holder: conn}, 0)
				}()
				if r := <-ch; r != nil {
					return r
				}
			}
		}
		state := func() (covered, inTx bool) {
			conn.shard.mu.Lock()
			defer conn.shard.mu.Unlock()
			return conn.covered(), conn.snapshot().inTx
		}
		rows := open(KindRows)
		if (rows.shard == conn.shard) != sameShard {
			t.Fatalf("same shard = %v; want %v", rows.shard == conn.shard, sameShard)
		}
		tx := open(KindTx)
		if c, in := state(); !c || !in {
			t.Fatalf("same shard %v: covered %v, in tx %v with rows and tx open; want true, true", sameShard, c, in)
		}
		f.clock.add(DefaultConnThreshold + time.Second)
		f.t.Close(tx)
		if c, in := state(); !c || in {
			t.Fatalf("same shard %v: covered %v, in tx %v with rows open; want true, false", sameShard, c, in)
		}
		f.t.Scan()
		for _, r := range f.got() {
			if r.Kind == KindConn {
				t.Fatalf("same shard %v: the covered conn was reported", sameShard)
			}
		}
		f.t.Close(rows)
		if c, _ := state(); c {
			t.Fatalf("same shard %v: still covered after the rows closed", sameShard)
		}
		conns := func() int {
			n := 0
			for _, r := range f.got() {
				if r.Kind == KindConn {
					n++
				}
			}
			return n
		}
		f.t.Scan()
		if n := conns(); n != 0 {
			t.Fatalf("same shard %v: %d conn reports as the rows closed; want none (it was covered all along)", sameShard, n)
		}
		f.clock.add(DefaultConnThreshold)
		f.t.Scan()
		if n := conns(); n != 1 {
			t.Fatalf("same shard %v: %d conn reports once uncovered for the threshold; want 1", sameShard, n)
		}
		f.t.Close(conn)
	}
}

func TestNoteTimed(t *testing.T) {
	f := newFixture(t, Config{DurationSlots: 2, DurationBuckets: []time.Duration{time.Millisecond}})
	r := f.t.Open(KindConn, 0)
	r.NoteTimed("SELECT 1", 1, 2*time.Millisecond)
	r.NoteTimed("SELECT 2", 1, time.Microsecond)
	r.NoteTimed("SELECT 3", 2, time.Second) // no such slot: counted as a statement only
	r.Note("SELECT 4")
	if n, q := r.statementInfo(); n != 4 || q != "SELECT 4" {
		t.Fatalf("statements, last query = %d, %q; want 4, SELECT 4", n, q)
	}
	f.t.Close(r)
	bounds, counts, sum := f.t.Durations(1)
	if len(bounds) != 1 || len(counts) != 2 || counts[0] != 1 || counts[1] != 1 || !sameSeconds(sum, 2*time.Millisecond+time.Microsecond) {
		t.Fatalf("slot 1: bounds %v, counts %v, sum %v; want [1ms], [1 1], 2.001ms", bounds, counts, sum)
	}
	if _, counts, _ := f.t.Durations(0); counts[0]+counts[1] != 0 {
		t.Fatalf("slot 0: counts %v; want none", counts)
	}
	if b, c, s := f.t.Durations(2); b != nil || c != nil || s != 0 {
		t.Fatalf("slot 2 (out of range): %v %v %v; want nothing", b, c, s)
	}
}

// TestScanWhileTheWatchdogRuns: Scan from a caller and the watchdog's
// own passes run one after the other (go test -race fails otherwise).
func TestScanWhileTheWatchdogRuns(t *testing.T) {
	th := [numKinds]time.Duration{}
	th[KindTx] = time.Millisecond
	tr, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Thresholds: th, Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		r := tr.Open(KindTx, 0)
		time.Sleep(time.Millisecond)
		tr.Scan()
		tr.Close(r)
	}
	if tr.Stats().Reported == 0 {
		t.Error("no report: the scans found nothing to report, so they did not touch the rate limiter")
	}
}

// TestOpenNotesHolder: with NoteHolder, the statement that opens rows is
// recorded on the holder (count, text, duration), whether the rows land
// in the holder's shard (one lock) or another's; without it, it is not.
func TestOpenNotesHolder(t *testing.T) {
	for _, sameShard := range []bool{true, false} {
		f := newFixture(t, Config{DurationSlots: 1, DurationBuckets: []time.Duration{time.Millisecond}})
		conn := f.t.Open(KindConn, 0)
		o := Opening{Holder: conn, Query: "SELECT 1", NoteHolder: true, Slot: 0, D: 2 * time.Millisecond}
		var rows *Resource
		if sameShard {
			rows = f.t.OpenLike(KindRows, o, 0)
		} else {
			for rows == nil {
				ch := make(chan *Resource)
				go func() {
					if goid.Get()%numShards == conn.goid%numShards {
						ch <- nil
						return
					}
					ch <- f.t.OpenLike(KindRows, o, 0)
				}()
				rows = <-ch
			}
		}
		if (rows.shard == conn.shard) != sameShard {
			t.Fatalf("same shard = %v; want %v", rows.shard == conn.shard, sameShard)
		}
		if n, q := conn.statementInfo(); n != 1 || q != "SELECT 1" {
			t.Fatalf("same shard %v: holder statements, last query = %d, %q; want 1, SELECT 1", sameShard, n, q)
		}
		if n, q := rows.statementInfo(); n != 1 || q != "SELECT 1" {
			t.Fatalf("same shard %v: rows statements, last query = %d, %q; want 1, SELECT 1", sameShard, n, q)
		}
		if _, counts, sum := f.t.Durations(0); counts[1] != 1 || !sameSeconds(sum, 2*time.Millisecond) {
			t.Fatalf("same shard %v: durations %v, sum %v; want one above 1ms, 2ms", sameShard, counts, sum)
		}
		f.t.Close(rows)
		o.NoteHolder = false
		f.t.Close(f.t.OpenLike(KindRows, o, 0))
		if n, _ := conn.statementInfo(); n != 1 {
			t.Fatalf("same shard %v: holder statements = %d after an open without NoteHolder; want 1", sameShard, n)
		}
		f.t.Close(conn)
	}
}

// sameSeconds reports whether a sum in seconds is d, to a nanosecond.
func sameSeconds(sum float64, d time.Duration) bool {
	return math.Abs(sum-d.Seconds()) < 1e-9
}
