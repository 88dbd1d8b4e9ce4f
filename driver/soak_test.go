package driver_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// The soak test's settings.
const (
	// A correct write waits for SQLite's lock in its busy handler, whose
	// sleeps grow to 100 ms: on a loaded machine one took 350 ms.
	soakThreshold  = 600 * time.Millisecond
	soakHold       = 1500 * time.Millisecond // a leak is released this long after it was made
	soakEvery      = 500 * time.Millisecond  // each leak maker makes one leak this often
	soakMaxOpen    = 20                      // room for every leak held at once and the correct load
	soakDefaultRun = 3 * time.Second         // SQLWATCH_SOAK's default
)

// markerLine returns "driver/FILE:LINE" of the line of file that holds
// the comment marker "// soak:NAME", as a report's origin spells it.
func markerLine(t *testing.T, file, name string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.HasSuffix(sc.Text(), "// soak:"+name) {
			return fmt.Sprintf("driver/%s:%d", file, n)
		}
	}
	t.Fatalf("no marker soak:%s in %s", name, file)
	return ""
}

// leakMade is one resource leaked on purpose.
type leakMade struct {
	kind      leak.Kind
	origin    string
	goroutine int64
}

// TestSoakLeaks runs a correct load for SQLWATCH_SOAK (default 3s) on
// every backend while leaks are made on purpose and released a second
// later: transactions left open by a handler that a keep-alive goroutine
// calls again and again (its other calls are correct), result sets left
// open, *sql.Conn held after a statement and *sql.Conn never used. Every
// leak must be reported exactly once with the line that made it and
// released exactly once; the correct part must draw no misuse report, no
// pool alert and no conn death; nothing may be dropped or suppressed.
//
//	SQLWATCH_SOAK=60s go test -race -count=1 -run TestSoakLeaks -v ./driver
func TestSoakLeaks(t *testing.T) {
	dur := envDuration(t, "SQLWATCH_SOAK", soakDefaultRun)
	eachBackend(t, func(t *testing.T, b backend) { soakLeaks(t, b, dur) })
}

func soakLeaks(t *testing.T, b backend, dur time.Duration) {
	origins := map[string]string{}
	for _, m := range []string{"tx", "rows", "conn", "conn-use", "conn-unused"} {
		origins[m] = markerLine(t, "soak_test.go", m)
	}
	w := &observed{}
	db := openWatched(t, b, workloadDSN(t, b), "soak", w.options(soakThreshold))
	db.SetMaxOpenConns(soakMaxOpen)
	q := wlTable(t, db, b, "soak", 16)
	w.monitor(t, db, wlMonitorEvery, wlWaitLimit)
	time.Sleep(3 * wlMonitorEvery)

	ctx := context.Background()
	var (
		mu       sync.Mutex
		made     []leakMade
		released sync.WaitGroup
		errs     []string
	)
	fail := func(what string, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Sprintf("%s: %v", what, err))
			mu.Unlock()
		}
	}
	// hold records a leak and releases it soakHold later.
	hold := func(l leakMade, release func() error) {
		mu.Lock()
		made = append(made, l)
		mu.Unlock()
		released.Add(1)
		time.AfterFunc(soakHold, func() {
			defer released.Done()
			fail("release "+l.kind.String(), release())
		})
	}

	start := time.Now()
	end := start.Add(dur)
	running := func() bool { return time.Now().Before(end) }
	var wg sync.WaitGroup
	runs := uint64(0)
	run := func(f func(rng *rand.Rand)) {
		wg.Add(1)
		runs++
		seed := runs
		go func() {
			defer wg.Done()
			f(rand.New(rand.NewPCG(seed, uint64(start.UnixNano()))))
		}()
	}

	// Two keep-alive sessions: one goroutine each calls the handler over
	// and over; one call in soakEvery leaks its tx.
	for s := range 2 {
		run(func(rng *rand.Rand) {
			g := goroutineID()
			last := time.Now()
			for running() {
				leaky := time.Since(last) >= soakEvery
				if leaky {
					last = time.Now()
				}
				tx, err := soakHandle(ctx, db, q, s+1, leaky)
				fail("handler", err)
				if tx != nil {
					hold(leakMade{leak.KindTx, origins["tx"], g}, tx.Rollback)
				}
				time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond)
			}
		})
	}
	// The other leak makers, each leak on a goroutine of its own.
	maker := func(mk func()) {
		run(func(*rand.Rand) {
			for running() {
				var mw sync.WaitGroup
				mw.Add(1)
				go func() { defer mw.Done(); mk() }()
				mw.Wait()
				time.Sleep(soakEvery)
			}
		})
	}
	maker(func() {
		rows, err := db.QueryContext(ctx, q.scan) // soak:rows
		if err != nil {
			fail("leaked rows", err)
			return
		}
		rows.Next()
		hold(leakMade{leak.KindRows, origins["rows"], goroutineID()}, rows.Close)
	})
	maker(func() {
		conn, err := db.Conn(ctx) // soak:conn
		if err != nil {
			fail("leaked conn", err)
			return
		}
		var n int
		fail("leaked conn's query", conn.QueryRowContext(ctx, q.selectOne, 3).Scan(&n)) // soak:conn-use
		hold(leakMade{leak.KindConn, origins["conn"], goroutineID()}, conn.Close)
	})
	maker(func() {
		conn, err := db.Conn(ctx) // soak:conn-unused
		if err != nil {
			fail("leaked unused conn", err)
			return
		}
		hold(leakMade{leak.KindConn, origins["conn-unused"], goroutineID()}, conn.Close)
	})
	// The correct load: reads, rows read on another goroutine, conns
	// taken, used and closed, pings.
	for range 4 {
		run(func(rng *rand.Rand) {
			for running() {
				var n int
				switch rng.IntN(4) {
				case 0:
					fail("query", db.QueryRowContext(ctx, q.selectOne, 4).Scan(&n))
				case 1:
					rows, err := db.QueryContext(ctx, q.scan)
					if err != nil {
						fail("query", err)
						continue
					}
					done := make(chan struct{})
					go func() {
						defer close(done)
						for rows.Next() {
						}
						fail("rows", rows.Close())
					}()
					<-done
				case 2:
					conn, err := db.Conn(ctx)
					if err != nil {
						fail("conn", err)
						continue
					}
					fail("conn query", conn.QueryRowContext(ctx, q.selectOne, 4).Scan(&n))
					fail("conn close", conn.Close())
				case 3:
					fail("ping", db.PingContext(ctx))
				}
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	released.Wait()
	elapsed := time.Since(start)

	// Every release line logged (the watchdog logs them as they come).
	tr := driver.TrackerOf(db)
	for ws := time.Now(); tr.Stats().Released < int64(len(made)) && time.Since(ws) < 5*time.Second; {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything late, or twice
	leak.VerifyNone(t, leak.Pool(db), leak.RetryFor(2*time.Second))
	for _, e := range errs {
		t.Errorf("the load itself failed: %s", e)
	}

	reports, misuse, alerts, logs := w.snapshot()
	type key struct {
		kind      leak.Kind
		origin    string
		goroutine int64
	}
	want := map[key]int{}
	wantReleased := map[key]int{}
	for _, l := range made {
		want[key(l)]++
		wantReleased[key{l.kind, l.origin, 0}]++
	}
	got := map[key]int{}
	gotReleased := map[key]int{}
	for _, r := range reports {
		if r.Released {
			gotReleased[key{r.Kind, r.Origin, 0}]++
			if r.Held < soakThreshold {
				t.Errorf("release line held %v, below the threshold %v: %s", r.Held, soakThreshold, fullReport(r))
			}
			continue
		}
		k := key{r.Kind, r.Origin, r.Goroutine}
		got[k]++
		if got[k] > want[k] {
			t.Errorf("leak report with no leak left to match (kind, origin, goroutine): %s", fullReport(r))
		}
	}
	perKind := map[string][2]int{} // made, reported, per kind and origin
	for k, n := range want {
		name := k.kind.String() + " " + k.origin
		pk := perKind[name]
		pk[0] += n
		pk[1] += min(got[k], n)
		perKind[name] = pk
	}
	names := make([]string, 0, len(perKind))
	for n := range perKind {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if pk := perKind[n]; pk[1] != pk[0] {
			t.Errorf("%s: %d leaks made, %d reported with that origin and goroutine", n, pk[0], pk[1])
		}
	}
	for k, n := range wantReleased {
		if gotReleased[k] != n {
			t.Errorf("%s %s: %d leaks made and released, %d release lines", k.kind, k.origin, n, gotReleased[k])
		}
	}
	for k, n := range gotReleased {
		if wantReleased[k] == 0 {
			t.Errorf("%s %s: %d release lines for no leak made there", k.kind, k.origin, n)
		}
	}
	for _, m := range misuse {
		t.Errorf("misuse report: %s", fullMisuse(m))
	}
	for _, a := range alerts {
		t.Errorf("pool alert: %s", fullJSON(a))
	}
	for _, l := range logs {
		var rec struct{ Kind string }
		json.Unmarshal([]byte(l), &rec)
		if rec.Kind != "tx" && rec.Kind != "conn" && rec.Kind != "rows" {
			t.Errorf("log line that is no leak or release: %s", l)
		}
	}
	st := tr.Stats()
	misuseTotal, deaths := int64(0), int64(0)
	for _, n := range st.Misuse {
		misuseTotal += n
	}
	for _, n := range st.ConnDeaths {
		deaths += n
	}
	if st.Dropped != 0 || st.Suppressed != 0 || st.Panics != 0 || misuseTotal != 0 || deaths != 0 ||
		st.Reported != int64(len(made)) || st.Released != int64(len(made)) || st.PoolAlerts != 0 {
		t.Errorf("tracker stats: %s; want Dropped, Suppressed, Panics, Misuse, ConnDeaths, PoolAlerts 0 and Reported = Released = %d (the leaks made)",
			fullJSON(st), len(made))
	}
	byKind := map[string]int{}
	for _, l := range made {
		byKind[l.kind.String()+" "+l.origin]++
	}
	if t.Failed() {
		for _, r := range reports {
			t.Logf("report: opened %s %s", r.Opened.Format("15:04:05.000"), fullReport(r))
		}
		mu.Lock()
		for _, l := range made {
			t.Logf("leak made: %s %s goroutine %d", l.kind, l.origin, l.goroutine)
		}
		mu.Unlock()
	}
	nRel := 0
	for _, r := range reports {
		if r.Released {
			nRel++
		}
	}
	t.Logf("%s: %v; leaks made %v (the conn's statement is at %s); %d leak reports, %d release lines; tracker stats %s",
		b.name, elapsed.Round(time.Millisecond), byKind, origins["conn-use"], len(reports)-nRel, nRel, fullJSON(st))
}

// soakHandle is a request handler: it begins a tx, and either leaks it
// (it returns it, for the test to release later) or finishes the request
// correctly: an update, a commit, then a read on the pool.
func soakHandle(ctx context.Context, db *sql.DB, q wlQueries, id int, leaky bool) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, nil) // soak:tx
	if err != nil {
		return nil, err
	}
	var n int
	if leaky {
		// A read: the leaked tx holds no lock that the correct calls
		// would wait for.
		if err := tx.QueryRowContext(ctx, q.selectOne, id).Scan(&n); err != nil {
			tx.Rollback()
			return nil, err
		}
		return tx, nil
	}
	if _, err := tx.ExecContext(ctx, q.update, id); err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return nil, db.QueryRowContext(ctx, q.selectOne, id).Scan(&n)
}
