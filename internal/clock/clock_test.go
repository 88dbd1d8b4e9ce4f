package clock

import (
	"testing"
	"time"
)

// agree reads Now between two readings of the runtime clock and checks
// that it falls between them, give or take slack.
func agree(t *testing.T, slack time.Duration) {
	t.Helper()
	for range 10 {
		a := sinceEpoch()
		n := Now()
		b := sinceEpoch()
		if b-a > int64(50*time.Microsecond) {
			continue // preempted between the readings: try again
		}
		if n < a-int64(slack) || n > b+int64(slack) {
			t.Fatalf("Now() = %d; want within %v of [%d, %d] (the runtime clock)", n, slack, a, b)
		}
		return
	}
	t.Skip("the machine is too busy to read two clocks together")
}

func TestNowFollowsRuntimeClock(t *testing.T) {
	t.Logf("time-stamp counter in use: %v", useTSC)
	// Across more than one re-anchoring (every second).
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		agree(t, 100*time.Microsecond)
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNowNeverStepsBack(t *testing.T) {
	// Readings on one goroutine never go back by more than the skew two
	// processors' counters may have (the goroutine may move between
	// them) or a re-anchoring's correction.
	prev := Now()
	deadline := time.Now().Add(1200 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		n := Now()
		if n < prev-int64(20*time.Microsecond) {
			t.Fatalf("reading %d: %d after %d: the clock went back %v", i, n, prev, time.Duration(prev-n))
		}
		prev = max(prev, n)
	}
}

func TestSinceMeasuresSleep(t *testing.T) {
	start := Now()
	time.Sleep(30 * time.Millisecond)
	if d := Since(start); d < 30*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Since after a 30ms sleep = %v", d)
	}
}

func TestBetween(t *testing.T) {
	f := func(start, end int64, want time.Duration) {
		t.Helper()
		if got := Between(start, end); got != want {
			t.Fatalf("Between(%d, %d) = %v; want %v", start, end, got, want)
		}
	}
	f(10, 25, 15)
	f(25, 10, 0)
	f(7, 7, 0)
}

func TestTimeAndOf(t *testing.T) {
	n := Now()
	if got := Of(Time(n)); got != n {
		t.Fatalf("Of(Time(%d)) = %d", n, got)
	}
	ts := Epoch.Add(42 * time.Second)
	if got := Of(ts); got != int64(42*time.Second) {
		t.Fatalf("Of(Epoch+42s) = %d", got)
	}
	if d := time.Since(Time(Now())); d < -100*time.Microsecond || d > time.Second {
		t.Fatalf("time.Since(Time(Now())) = %v", d)
	}
}
