// Package goid returns the current goroutine's id cheaply.
//
// The id is the number the runtime prints in goroutine dumps
// ("goroutine 123 [running]:", as produced by runtime.Stack and by
// panics/SIGQUIT), so a value obtained with Get can be matched against a
// dump taken later, for example to find the goroutine that holds a database
// connection or transaction. The runtime has no public API for it; the
// portable way is to parse the header of runtime.Stack(buf, false), which
// walks the stack and costs several microseconds. That is too slow to do on
// every database statement, so this package reads the id directly out of
// the runtime's per-goroutine structure (runtime.g):
//
//   - A tiny assembly function (getg_amd64.s, getg_arm64.s) returns the
//     current g pointer: from thread-local storage on amd64, from the
//     dedicated g register (R28) on arm64.
//   - The offset of the goid field inside runtime.g is not hard-coded per Go
//     version. On first use of Get or Fast (guarded by a sync.Once, not at
//     package init) the package starts a few fresh goroutines; each one takes
//     its g pointer and its id parsed from runtime.Stack, and copies the first
//     scanWords 8-byte words of its g. The offset is accepted only if exactly
//     one word equals the goroutine's id in every sample (the sample ids are
//     all distinct, so an unrelated field cannot match by coincidence), and it
//     is cross-checked once more on the calling goroutine.
//   - After that, Get is one call to getg plus one load: a few nanoseconds
//     and no allocation.
//
// On other architectures, with compilers other than gc, when built with the
// purego tag, or if calibration does not find exactly one matching offset
// (e.g. a future runtime stores the id differently), Get permanently falls
// back to parsing runtime.Stack: same results, microseconds per call. Fast
// reports which path is in use.
//
// Ids are positive, equal the "goroutine N" header of runtime.Stack for the
// calling goroutine, and stay the same for the goroutine's whole life (stack
// growth, rescheduling onto other threads and GC do not change them). The
// runtime allocates them from a monotonically increasing 64-bit counter, so
// an id is never reused within a process, not even after its goroutine has
// exited. All functions are safe for concurrent use.
package goid

import (
	"runtime"
	"sync"
	"unsafe"
)

const (
	// scanWords is how many 8-byte words at the start of runtime.g are
	// examined during calibration (320 bytes). The goid field sits at byte
	// 152 on 64-bit platforms in Go 1.26 (and, by the struct layout, in
	// every release since Go 1.9). The scan must stay inside the g
	// allocation (448 bytes in Go 1.26 on 64-bit, and comfortably above 320
	// in every release): reading past it could touch another heap object or
	// an unmapped page, and under -race (which enables checkptr) the pointer
	// arithmetic makes the runtime throw "checkptr: pointer arithmetic
	// result points to invalid allocation" (verified with a 512-byte scan).
	scanWords = 40

	// numSamples is the number of goroutines used for calibration.
	numSamples = 8
)

var (
	once    sync.Once
	fast    bool    // set once by calibrate; read after once.Do
	goidOff uintptr // byte offset of goid in runtime.g; valid if fast
)

// Get returns the calling goroutine's id, as runtime.Stack prints it.
//
// It returns -1 only in the theoretical case that the fast path is not
// available and runtime.Stack's header cannot be parsed.
func Get() int64 {
	once.Do(calibrate)
	if fast {
		return *(*int64)(unsafe.Add(getg(), goidOff))
	}
	return slow()
}

// Fast reports whether Get uses the calibrated fast path (false: it parses
// runtime.Stack, which costs microseconds).
func Fast() bool {
	once.Do(calibrate)
	return fast
}

// slow returns the calling goroutine's id parsed from runtime.Stack, or -1.
func slow() int64 {
	// "goroutine " + at most 20 digits + " ": the header is all we need and
	// runtime.Stack truncates the rest of the dump to fit the buffer.
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	id, ok := parseHeader(buf[:n])
	if !ok {
		return -1
	}
	return id
}

// parseHeader parses the id from the start of a goroutine dump, which looks
// like "goroutine 123 [running]:" or, with GOTRACEBACK=system and above,
// "goroutine 123 gp=0x... m=0 mp=0x... [running]:".
func parseHeader(b []byte) (int64, bool) {
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0, false
	}
	b = b[len(prefix):]
	var id int64
	i := 0
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if id > (1<<63-1-d)/10 {
			return 0, false // overflow
		}
		id = id*10 + d
	}
	// Require the terminating space so a truncated number is never returned.
	if i == 0 || i >= len(b) || b[i] != ' ' || id <= 0 {
		return 0, false
	}
	return id, true
}

// sample is what one calibration goroutine observed: its id according to
// runtime.Stack and a copy of the first scanWords words of its runtime.g.
type sample struct {
	id    uint64
	words [scanWords]uint64
}

// calibrate runs once and enables the fast path if the goid offset is found.
func calibrate() {
	if !haveGetg {
		return
	}
	off, ok := findOffset(collectSamples())
	if !ok {
		return
	}
	// Cross-check on the calling goroutine, which has another id.
	if id := slow(); id <= 0 || *(*int64)(unsafe.Add(getg(), off)) != id {
		return
	}
	goidOff, fast = off, true
}

// collectSamples takes one sample on each of numSamples fresh goroutines.
// They run concurrently and get distinct ids.
func collectSamples() []sample {
	samples := make([]sample, numSamples)
	var wg sync.WaitGroup
	for i := range samples {
		wg.Go(func() { takeSample(&samples[i]) })
	}
	wg.Wait()
	return samples
}

// takeSample records the calling goroutine's id and the start of its g.
// On failure it leaves s zero, which findOffset rejects.
func takeSample(s *sample) {
	id := slow()
	if id <= 0 {
		return
	}
	g := getg()
	for i := range s.words {
		s.words[i] = *(*uint64)(unsafe.Add(g, i*8))
	}
	s.id = uint64(id)
}

// findOffset returns the byte offset of the only word that holds the
// sample's id in every sample. It fails if there are fewer than two samples,
// if any id is missing or repeated (then unrelated fields could match), or if
// zero or several offsets match.
func findOffset(samples []sample) (uintptr, bool) {
	if len(samples) < 2 {
		return 0, false
	}
	seen := make(map[uint64]bool, len(samples))
	for _, s := range samples {
		if s.id == 0 || seen[s.id] {
			return 0, false
		}
		seen[s.id] = true
	}
	found := -1
	for w := 0; w < scanWords; w++ {
		match := true
		for i := range samples {
			if samples[i].words[w] != samples[i].id {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		if found >= 0 {
			return 0, false // ambiguous
		}
		found = w
	}
	if found < 0 {
		return 0, false
	}
	return uintptr(found) * 8, true
}
