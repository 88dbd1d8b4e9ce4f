package goid_test

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"unsafe"

	"github.com/sqlwatch/sqlwatch/internal/goid"
)

// stackID parses the calling goroutine's id from runtime.Stack, independently
// of the package's own parser.
func stackID(t testing.TB) int64 {
	buf := make([]byte, 128)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 || string(f[0]) != "goroutine" {
		t.Errorf("unexpected runtime.Stack header %q", buf)
		return -2
	}
	id, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		t.Errorf("unexpected runtime.Stack header %q: %v", buf, err)
		return -2
	}
	return id
}

func TestFast(t *testing.T) {
	off, ok := goid.Offset()
	t.Logf("GOARCH=%s compiler=%s asm=%v fast=%v offset=%d", runtime.GOARCH, runtime.Compiler, goid.HaveAsm, ok, off)
	if goid.Fast() != ok {
		t.Fatal("Fast disagrees with Offset")
	}
	if goid.HaveAsm && !goid.Fast() {
		t.Fatalf("calibration failed on %s/%s; Get uses the slow path", runtime.GOARCH, runtime.Version())
	}
	if runtime.GOARCH == "amd64" && runtime.Compiler == "gc" && !goid.HaveAsm {
		t.Log("built with purego: fast path disabled by tag")
	}
	if !goid.HaveAsm && goid.Fast() {
		t.Fatal("Fast reports true without the assembly getg")
	}
}

func TestGetMatchesStack(t *testing.T) {
	got, want := goid.Get(), stackID(t)
	if got != want {
		t.Fatalf("Get() = %d, runtime.Stack says %d", got, want)
	}
	if s := goid.Slow(); s != want {
		t.Fatalf("slow path = %d, runtime.Stack says %d", s, want)
	}
}

// TestManyGoroutines runs 200 goroutines that are all alive at the same time;
// each compares Get with runtime.Stack, and the ids must be distinct.
func TestManyGoroutines(t *testing.T) {
	const n = 200
	ids := make([]int64, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	for i := range n {
		done.Go(func() {
			ready.Done()
			<-start // everyone is alive before anyone checks
			got, want := goid.Get(), stackID(t)
			if got != want {
				t.Errorf("goroutine %d: Get() = %d, runtime.Stack says %d", i, got, want)
			}
			runtime.Gosched()
			if again := goid.Get(); again != got {
				t.Errorf("goroutine %d: Get() changed from %d to %d", i, got, again)
			}
			ids[i] = got
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	seen := make(map[int64]int, n)
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			t.Errorf("goroutines %d and %d both got id %d", j, i, id)
		}
		seen[id] = i
	}
	parent := goid.Get()
	if _, dup := seen[parent]; dup {
		t.Errorf("a child goroutine reported the parent's id %d", parent)
	}
}

//go:noinline
func recurse(t *testing.T, depth int, want int64) uintptr {
	var pad [256]byte // make every frame big so the stack has to grow
	pad[depth%len(pad)] = byte(depth)
	if depth == 0 {
		if got := goid.Get(); got != want {
			t.Errorf("Get() at the bottom of a deep stack = %d, want %d", got, want)
		}
		return uintptr(pad[0])
	}
	return recurse(t, depth-1, want) + uintptr(pad[depth%len(pad)])
}

// TestStableAcrossStackGrowth checks that the id survives the stack being
// copied (growth and shrinking), rescheduling and blocking.
func TestStableAcrossStackGrowth(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		want := stackID(t)
		if got := goid.Get(); got != want {
			t.Errorf("Get() = %d, runtime.Stack says %d", got, want)
			return
		}
		var local int
		before := uintptr(unsafe.Pointer(&local))
		recurse(t, 4000, want) // ~1 MB of frames: the initial stack is copied many times
		after := uintptr(unsafe.Pointer(&local))
		// ~1 MB of frames cannot fit the initial stack, so it was copied.
		// The address comparison only confirms it; it is skipped when a
		// build mode (-d=checkptr=2) moves address-taken locals to the heap.
		t.Logf("stack moved during recursion: %v", before != after)
		runtime.GC() // may shrink the stack again
		runtime.Gosched()
		c := make(chan int)
		go func() { c <- 1 }()
		<-c // park and resume, possibly on another M
		runtime.LockOSThread()
		got := goid.Get()
		runtime.UnlockOSThread()
		if got != want {
			t.Errorf("after stack growth: Get() = %d, want %d", got, want)
		}
		if s := stackID(t); s != want {
			t.Errorf("after stack growth: runtime.Stack says %d, want %d", s, want)
		}
	}()
	<-done
}

var sink int64

func TestZeroAllocs(t *testing.T) {
	if !goid.Fast() {
		t.Skip("slow path in use")
	}
	if a := testing.AllocsPerRun(1000, func() { sink = goid.Get() }); a != 0 {
		t.Fatalf("Get allocates %v times per call", a)
	}
}

// TestConcurrentFirstUse starts a fresh process in which the first calls to
// Get come from many goroutines at once, so calibration races with callers.
func TestConcurrentFirstUse(t *testing.T) {
	if os.Getenv("GOID_FIRST_USE_HELPER") == "1" {
		firstUseHelper(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestConcurrentFirstUse$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GOID_FIRST_USE_HELPER=1")
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Skipf("cannot re-run the test binary: %v", err) // e.g. under qemu-user
	}
	if err != nil {
		t.Fatalf("helper failed: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("first-use helper ok")) {
		t.Fatalf("helper did not run:\n%s", out)
	}
}

func firstUseHelper(t *testing.T) {
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if got, want := goid.Get(), stackID(t); got != want {
				t.Errorf("Get() = %d, runtime.Stack says %d", got, want)
			}
		})
	}
	wg.Wait()
	if goid.HaveAsm && !goid.Fast() {
		t.Error("calibration failed")
	}
	t.Log("first-use helper ok")
}
