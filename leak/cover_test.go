package leak_test

import (
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/goid"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// coverFixture is a tracker on a clock the test moves, whose watchdog
// never ticks on its own (the test calls Scan), collecting every logged
// report (leaks and releases) from outside package leak, so that origins
// are the test's own lines.
type coverFixture struct {
	tr   *track.Tracker
	mu   sync.Mutex
	now  time.Time
	reps []track.Report
}

func newCoverFixture(t *testing.T) *coverFixture {
	t.Helper()
	f := &coverFixture{now: time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)}
	tr, err := track.NewTracker(track.Config{
		DBName:   "cover",
		Interval: time.Hour,
		Logger:   slog.New(slog.DiscardHandler),
		Now:      func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		OnReport: func(r track.Report) { f.mu.Lock(); f.reps = append(f.reps, r); f.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.tr = tr
	t.Cleanup(func() { tr.Stop() })
	return f
}

func (f *coverFixture) add(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

// stop stops the watchdog, which logs the queued release lines first,
// and returns every report.
func (f *coverFixture) stop() []track.Report {
	f.tr.Stop()
	return f.reports()
}

func (f *coverFixture) reports() []track.Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]track.Report(nil), f.reps...)
}

// leaks counts the leak reports of kind k made so far.
func (f *coverFixture) leaks(k track.Kind) int {
	n := 0
	for _, r := range f.reports() {
		if r.Kind == k && !r.Released {
			n++
		}
	}
	return n
}

// summary lists reports as "tx leak", "conn release", ..., sorted: a
// release line is logged by the watchdog's goroutine, in no set order
// with the reports of the test's own Scan calls.
func summary(reps []track.Report) []string {
	var out []string
	for _, r := range reps {
		s := r.Kind.String() + " leak"
		if r.Released {
			s = r.Kind.String() + " release"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// find returns the first report of kind k, a release or not.
func find(reps []track.Report, k track.Kind, released bool) track.Report {
	for _, r := range reps {
		if r.Kind == k && r.Released == released {
			return r
		}
	}
	return track.Report{}
}

// here returns "leak/cover_test.go:N" for the caller's line plus delta.
func here(delta int) string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("leak/cover_test.go:%d", line+delta)
}

// holding opens a tx or rows of kind k held by conn, as the driver does:
// in conn's shard, or, when elsewhere is set, from a goroutine whose
// resources go to another shard.
func holding(tr *track.Tracker, k track.Kind, conn *track.Resource, elsewhere bool) *track.Resource {
	if !elsewhere {
		return tr.OpenLike(k, track.Opening{Holder: conn}, 0)
	}
	for {
		ch := make(chan *track.Resource)
		go func() {
			if goid.Get()%track.NumShards == conn.Goroutine()%track.NumShards {
				ch <- nil
				return
			}
			ch <- tr.OpenLike(k, track.Opening{Holder: conn}, 0)
		}()
		if r := <-ch; r != nil {
			return r
		}
	}
}

// TestReleasedTxNotReportedAsConn: a leaked tx is reported and released;
// its conn, still checked out for a moment after the tx ends (database/sql
// returns it just after Rollback), is past the conn threshold counted from
// the checkout, but it spent that time held by the tx, which reported for
// it: a scan in that moment reports nothing more. One leak, one report,
// one release line.
func TestReleasedTxNotReportedAsConn(t *testing.T) {
	for _, elsewhere := range []bool{false, true} {
		f := newCoverFixture(t)
		conn := f.tr.Open(track.KindConn, 0)
		var tx *track.Resource
		if elsewhere {
			tx = holding(f.tr, track.KindTx, conn, true)
		} else {
			// As BeginTx on a fresh checkout: the tx shares its stack and start.
			tx = f.tr.OpenLike(track.KindTx, track.Opening{Like: conn, Holder: conn}, 0)
		}
		f.add(track.DefaultTxThreshold + time.Second)
		f.tr.Scan()
		f.add(30 * time.Second)
		f.tr.Scan()
		f.tr.Close(tx)
		f.tr.Scan() // the conn is not back in the pool yet
		f.add(time.Millisecond)
		f.tr.Scan()
		f.tr.Close(conn)
		got := fmt.Sprint(summary(f.stop()))
		if want := "[tx leak tx release]"; got != want {
			t.Errorf("tx in another shard %v: reports %s; want %s", elsewhere, got, want)
		}
		if st := f.tr.Stats(); st.Reported != 1 || st.Released != 1 {
			t.Errorf("tx in another shard %v: %d reported, %d released; want 1, 1", elsewhere, st.Reported, st.Released)
		}
	}
}

// TestConnKeptAfterTxReportedOnce: a conn kept out after its tx ends (a
// *sql.Conn whose tx committed) is a conn leak once it has been out, and
// not held by the tx, for longer than the conn threshold: reported once,
// at the line that checked it out, and released once.
func TestConnKeptAfterTxReportedOnce(t *testing.T) {
	for _, elsewhere := range []bool{false, true} {
		f := newCoverFixture(t)
		connAt := here(1)
		conn := f.tr.Open(track.KindConn, 0)
		f.add(10 * time.Second) // uncovered: 10s
		tx := holding(f.tr, track.KindTx, conn, elsewhere)
		f.add(track.DefaultTxThreshold + time.Second)
		f.tr.Scan()
		if n := f.leaks(track.KindTx); n != 1 {
			t.Fatalf("tx in another shard %v: %d tx reports; want 1", elsewhere, n)
		}
		f.tr.Close(tx)
		f.tr.Scan()
		f.add(track.DefaultConnThreshold - 10*time.Second - time.Second) // uncovered: threshold - 1s
		f.tr.Scan()
		if n := f.leaks(track.KindConn); n != 0 {
			t.Fatalf("tx in another shard %v: conn reported after %v out of a tx; want it kept until the threshold",
				elsewhere, track.DefaultConnThreshold-time.Second)
		}
		f.add(2 * time.Second) // uncovered: threshold + 1s
		f.tr.Scan()
		f.add(time.Minute)
		f.tr.Scan()
		f.tr.Close(conn)
		reps := f.stop()
		if got, want := fmt.Sprint(summary(reps)), "[conn leak conn release tx leak tx release]"; got != want {
			t.Fatalf("tx in another shard %v: reports %s; want %s", elsewhere, got, want)
		}
		if c := find(reps, track.KindConn, false); c.Origin != connAt || c.Age != 10*time.Second+track.DefaultTxThreshold+time.Second+track.DefaultConnThreshold-10*time.Second+time.Second {
			t.Errorf("tx in another shard %v: conn report at %s, age %v; want %s, the checkout's age", elsewhere, c.Origin, c.Age, connAt)
		}
		if r := find(reps, track.KindConn, true); r.Origin != connAt {
			t.Errorf("tx in another shard %v: conn release at %s; want %s", elsewhere, r.Origin, connAt)
		}
	}
}

// TestLongTxConnSilent: however long a tx stays open (rows opened and
// closed inside it included), it is reported once, and the conn it holds
// is not reported while it is open, nor in the moment between the tx's
// end and the conn's return.
func TestLongTxConnSilent(t *testing.T) {
	for _, elsewhere := range []bool{false, true} {
		f := newCoverFixture(t)
		conn := f.tr.Open(track.KindConn, 0)
		tx := holding(f.tr, track.KindTx, conn, elsewhere)
		for range 20 {
			f.add(20 * time.Second)
			rows := holding(f.tr, track.KindRows, conn, !elsewhere)
			f.add(time.Second)
			f.tr.Scan()
			f.tr.Close(rows)
			f.tr.Scan()
		}
		if n, c := f.leaks(track.KindTx), f.leaks(track.KindConn); n != 1 || c != 0 {
			t.Errorf("tx in another shard %v: %d tx and %d conn reports while the tx is open; want 1 and 0", elsewhere, n, c)
		}
		f.tr.Close(tx)
		f.tr.Scan()
		f.tr.Close(conn)
		if got, want := fmt.Sprint(summary(f.stop())), "[tx leak tx release]"; got != want {
			t.Errorf("tx in another shard %v: reports %s; want %s", elsewhere, got, want)
		}
	}
}

// TestBusyConnStillReported: a conn kept out (a *sql.Conn) and used now
// and then, by statements that hold nothing (Exec) and by short queries
// whose rows cover it for a second, is a conn leak once its time out of
// those rows passes the threshold.
func TestBusyConnStillReported(t *testing.T) {
	for _, elsewhere := range []bool{false, true} {
		f := newCoverFixture(t)
		connAt := here(1)
		conn := f.tr.Open(track.KindConn, 0)
		var covered time.Duration
		for f.leaks(track.KindConn) == 0 {
			f.add(5 * time.Second)
			conn.Note("UPDATE jobs SET beat = now()")
			rows := holding(f.tr, track.KindRows, conn, elsewhere)
			f.add(time.Second)
			covered += time.Second
			f.tr.Close(rows)
			f.tr.Scan()
			if covered > time.Hour {
				t.Fatalf("tx in another shard %v: never reported", elsewhere)
			}
		}
		reps := f.reports()
		if len(reps) != 1 || reps[0].Origin != connAt || reps[0].Age-covered < track.DefaultConnThreshold || reps[0].Age-covered > track.DefaultConnThreshold+5*time.Second {
			t.Errorf("tx in another shard %v: reports %s, the first at %s aged %v (%v of it in rows); want one conn report at %s, out of its rows for the threshold (%v) within a scan",
				elsewhere, summary(reps), reps[0].Origin, reps[0].Age, covered, connAt, track.DefaultConnThreshold)
		}
		f.tr.Close(conn)
		if got, want := fmt.Sprint(summary(f.stop())), "[conn leak conn release]"; got != want {
			t.Errorf("tx in another shard %v: reports %s; want %s", elsewhere, got, want)
		}
	}
}
