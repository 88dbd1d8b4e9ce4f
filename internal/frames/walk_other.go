//go:build !((amd64 || arm64) && gc && !purego && !sqlwatch_nofp)

package frames

import "runtime"

// walk is runtime.Callers' version of walk_asm.go's: the same return
// addresses (with a frame for each inlined call, the same on every walk
// of one goroutine), from the caller's frame. It allocates only for a
// stack deeper than 256 frames.
//
//go:noinline
func walk(skip int, pcs []uintptr) (n, total int) {
	// runtime.Callers: 0 is Callers, 1 is walk, 2 is in walk's caller,
	// 3 returns into its caller: pcs[0] of the frame-pointer walk.
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
