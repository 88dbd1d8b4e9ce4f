// Package frames tells whether a call frame of the calling goroutine is
// still running, without symbolizing: it is what lets tx_bypass tell the
// function that began a transaction, still running, from a later call of
// the same function after the first one returned and leaked it.
//
// A [Walk] holds the goroutine's return addresses, innermost first, and
// how many there are in all. A [Mark] names one frame by its depth from
// the goroutine's outermost frame and the return address saved in it
// (where it returns to in its caller). While the frame runs, a later
// Walk on the same goroutine finds that return address at that depth
// ([Walk.Find]); once it has returned, a frame at that depth returns
// elsewhere, or the stack is shallower, unless the same caller called
// the same call site again (a frame the Mark cannot tell from the first).
// Depth from the outermost frame does not change when the runtime moves
// a goroutine's stack, as addresses would.
//
// On amd64 and arm64 a Walk follows the frame pointers the Go compiler
// maintains (tens of nanoseconds for a few dozen frames); elsewhere, or
// built with the tag sqlwatch_nofp, it calls runtime.Callers. [Callers]
// is that walk, and callstack.Stack.Capture's too.
package frames

import "sync/atomic"

// Max is the number of return addresses a Walk keeps; it counts all of
// them.
const Max = 128

// Walk is the calling goroutine's chain of return addresses. The zero
// value is an empty walk.
type Walk struct {
	n, total int
	pcs      [Max]uintptr
}

// Capture fills w with the calling goroutine's return addresses, the
// innermost first: pcs[0] returns into the caller of the function that
// calls Capture. It does not allocate on amd64 and arm64.
//
//go:noinline
func (w *Walk) Capture() {
	w.n, w.total = Callers(0, w.pcs[:], true)
}

// PCs returns the kept return addresses, innermost first (a slice of w's
// own array).
func (w *Walk) PCs() []uintptr { return w.pcs[:w.n] }

// Mark names one running frame of a goroutine: see the package comment.
// The zero Mark names no frame.
type Mark struct {
	depth int     // of ret, from the outermost return address (0)
	ret   uintptr // the return address saved in the frame
}

// MarkOf returns the Mark of the frame that pcs[i] returns into (the
// frame that made the call at pcs[i]). ok is false when w does not hold
// that frame's own return address.
func (w *Walk) MarkOf(i int) (m Mark, ok bool) {
	if i < 0 || i+1 >= w.n {
		return Mark{}, false
	}
	return Mark{depth: w.total - 1 - (i + 1), ret: w.pcs[i+1]}, true
}

// Find reports whether the frame m names runs on w's goroutine, as w
// saw it, and returns the return address into that frame: the call it
// is making now. It must be given a Walk of the goroutine that m was
// taken on.
func (w *Walk) Find(m Mark) (at uintptr, ok bool) {
	if m.ret == 0 {
		return 0, false
	}
	j := w.total - 1 - m.depth // the index of m.ret in w
	if j < 1 || j >= w.total {
		return 0, false
	}
	if j < w.n {
		if w.pcs[j] != m.ret {
			return 0, false
		}
		return w.pcs[j-1], true
	}
	// Deeper than w keeps: walk again for the two addresses, counting
	// from the outermost frame as w did.
	return findDeep(m)
}

//go:noinline
func findDeep(m Mark) (at uintptr, ok bool) {
	_, total := Callers(0, nil, true)
	var two [2]uintptr
	// Both walks start in this frame, so indices agree between them.
	j := total - 1 - m.depth
	if j < 1 {
		return 0, false
	}
	if n, _ := Callers(j-1, two[:], true); n < 2 || two[1] != m.ret {
		return 0, false
	}
	return two[0], true
}

// Cache remembers one bit per return address (whether it is in the
// application's code, say) so that the slow decision, which symbolizes,
// is made once per address. Lookups take no lock and do not allocate; a
// full neighbourhood leaves the address uncached (decided every time),
// so the memory stays fixed. The zero value is an empty cache.
type Cache struct {
	slots [cacheSlots]atomic.Uint64 // pc<<1 | bit; 0 is empty
}

const (
	cacheSlots = 2048
	cacheProbe = 16
)

// Get returns the bit of pc, calling decide the first time (or every
// time, when its neighbourhood is full).
func (c *Cache) Get(pc uintptr, decide func(uintptr) bool) bool {
	key := uint64(pc) << 1
	h := (uint64(pc) * 0x9e3779b97f4a7c15) >> 32
	for i := uint64(0); i < cacheProbe; i++ {
		s := &c.slots[(h+i)%cacheSlots]
		v := s.Load()
		if v == 0 {
			break
		}
		if v&^1 == key {
			return v&1 == 1
		}
	}
	bit := decide(pc)
	v := key
	if bit {
		v |= 1
	}
	for i := uint64(0); i < cacheProbe; i++ {
		s := &c.slots[(h+i)%cacheSlots]
		if s.CompareAndSwap(0, v) {
			break
		}
		if s.Load()&^1 == key {
			break // stored meanwhile by another goroutine
		}
	}
	return bit
}

// Physical reports whether a Walk holds one return address per physical
// frame (the frame-pointer walk: a function inlined into its caller has
// no address of its own), rather than one per function, inlined ones
// included (runtime.Callers).
const Physical = haveFP
