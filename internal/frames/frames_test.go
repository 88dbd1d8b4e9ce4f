package frames

import (
	"sync"
	"sync/atomic"
	"testing"
)

// markCaller returns the Mark of its caller's frame.
//
//go:noinline
func markCaller() Mark {
	var w Walk
	w.Capture() // pcs[0] returns here, pcs[1] into our caller
	m, ok := w.MarkOf(1)
	if !ok {
		panic("no mark")
	}
	return m
}

// find reports whether m's frame runs.
//
//go:noinline
func find(m Mark) bool {
	var w Walk
	w.Capture()
	_, ok := w.Find(m)
	return ok
}

//go:noinline
func holder(then func(Mark) bool) bool {
	m := markCaller()
	return then(m)
}

//go:noinline
func nested(depth int, f func() bool) bool {
	if depth == 0 {
		return f()
	}
	var pad [64]byte
	r := nested(depth-1, f)
	_ = pad
	return r
}

func TestFindRunningFrame(t *testing.T) {
	if !holder(find) {
		t.Fatal("the marking frame runs, Find says it does not")
	}
	if !holder(func(m Mark) bool { return nested(10, func() bool { return find(m) }) }) {
		t.Fatal("the marking frame runs, ten frames out: not found")
	}
}

func TestFindReturnedFrame(t *testing.T) {
	var m Mark
	holder(func(mm Mark) bool { m = mm; return true })
	if find(m) {
		t.Fatal("the marking frame returned, Find says it runs")
	}
	// Deeper than the frame was, through other call sites.
	if nested(5, func() bool { return find(m) }) {
		t.Fatal("the marking frame returned, a deeper stack through other call sites finds it")
	}
}

func TestFindRecallSameSite(t *testing.T) {
	// The documented limit: the same caller calling the same call site
	// again makes a frame that the Mark cannot tell from the first.
	var m Mark
	for i := range 2 {
		holder(func(mm Mark) bool {
			if i == 0 {
				m = mm
				return true
			}
			if !find(m) {
				t.Error("the same call site again: expected the limit (found), got not found")
			}
			return true
		})
	}
}

func TestFindDeep(t *testing.T) {
	// More than Max frames between the marked frame and Find.
	ok := holder(func(m Mark) bool { return nested(3*Max, func() bool { return find(m) }) })
	if !ok {
		t.Fatal("marked frame 3*Max frames out: not found")
	}
	var m Mark
	holder(func(mm Mark) bool { m = mm; return true })
	if nested(3*Max, func() bool { return find(m) }) {
		t.Fatal("returned frame found through a deep stack")
	}
}

//go:noinline
func grow(n int) int {
	var big [1024]byte
	big[n%1024] = byte(n)
	if n == 0 {
		return int(big[0])
	}
	return grow(n-1) + int(big[n%1024])
}

func TestFindAfterStackMoves(t *testing.T) {
	// A new goroutine's stack starts small: growing it moves it, and
	// the Mark must still name the frame.
	done := make(chan bool)
	go func() {
		done <- holder(func(m Mark) bool {
			grow(200) // 200 KB of frames: the stack is copied
			return find(m)
		})
	}()
	if !<-done {
		t.Fatal("after the stack moved, the running frame is not found")
	}
}

func TestMarkOfBounds(t *testing.T) {
	var w Walk
	if _, ok := w.MarkOf(0); ok {
		t.Fatal("empty walk gave a mark")
	}
	if _, ok := w.Find(Mark{}); ok {
		t.Fatal("zero mark found")
	}
	w.Capture()
	if w.n == 0 || w.total < w.n {
		t.Fatalf("walk: n=%d total=%d", w.n, w.total)
	}
	if _, ok := w.MarkOf(w.n - 1); ok {
		t.Fatal("the outermost kept address has no saved return address in w, but MarkOf gave one")
	}
}

func TestCaptureDoesNotAllocate(t *testing.T) {
	if !haveFP {
		t.Skip("runtime.Callers fallback")
	}
	var w Walk
	if a := testing.AllocsPerRun(100, func() { w.Capture() }); a != 0 {
		t.Fatalf("Capture allocates %v times", a)
	}
}

func TestCache(t *testing.T) {
	var c Cache
	var calls atomic.Int32
	decide := func(pc uintptr) bool { calls.Add(1); return pc%2 == 1 }
	for range 3 {
		for pc := uintptr(1); pc <= 100; pc++ {
			if got := c.Get(pc, decide); got != (pc%2 == 1) {
				t.Fatalf("pc %d: got %v", pc, got)
			}
		}
	}
	if n := calls.Load(); n != 100 {
		t.Fatalf("decide called %d times for 100 addresses, want 100", n)
	}
	// Concurrent use: the same answers, no race.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pc := uintptr(1); pc < 5000; pc++ {
				if c.Get(pc*7+uintptr(g), decide) != ((pc*7+uintptr(g))%2 == 1) {
					t.Error("wrong bit")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCacheFullNeighbourhood(t *testing.T) {
	// More addresses than slots: the ones that find no room are decided
	// every time, still right.
	var c Cache
	decide := func(pc uintptr) bool { return pc%3 == 0 }
	for pc := uintptr(1); pc < 4*cacheSlots; pc++ {
		if c.Get(pc, decide) != (pc%3 == 0) {
			t.Fatalf("pc %d wrong", pc)
		}
	}
	for pc := uintptr(1); pc < 4*cacheSlots; pc++ {
		if c.Get(pc, decide) != (pc%3 == 0) {
			t.Fatalf("pc %d wrong on the second pass", pc)
		}
	}
}

func BenchmarkCapture(b *testing.B) {
	var w Walk
	for b.Loop() {
		w.Capture()
	}
}

func BenchmarkFind(b *testing.B) {
	holder(func(m Mark) bool {
		var w Walk
		for b.Loop() {
			w.Capture()
			if _, ok := w.Find(m); !ok {
				b.Fatal("not found")
			}
		}
		return true
	})
}
