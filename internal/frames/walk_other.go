//go:build !((amd64 || arm64) && gc && !purego && !sqlwatch_nofp)

package frames

import "runtime"

// Callers is runtime.Callers' version of walk_asm.go's: the same return
// addresses (with one for each inlined call, the same on every walk of
// one goroutine), from the caller's frame. With count it allocates for a
// stack deeper than 256 frames.
//
//go:noinline
func Callers(skip int, pcs []uintptr, count bool) (n, total int) {
	// runtime.Callers: 0 is Callers, 1 is our Callers, 2 is in its
	// caller, 3 returns into the caller's caller: pcs[0] of the
	// frame-pointer walk.
	if !count {
		n = runtime.Callers(3+skip, pcs)
		return n, skip + n
	}
	var buf [256]uintptr
	all := buf[:]
	for {
		total = runtime.Callers(3, all)
		if total < len(all) {
			break
		}
		all = make([]uintptr, 2*len(all))
	}
	if skip < total {
		n = copy(pcs, all[skip:total])
	}
	return n, total
}

const haveFP = false
