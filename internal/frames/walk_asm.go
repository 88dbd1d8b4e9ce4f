//go:build (amd64 || arm64) && gc && !purego && !sqlwatch_nofp

package frames

// walk follows the frame-pointer chain from its caller's frame to the
// goroutine's outermost frame: it passes over the first skip return
// addresses, stores the next ones in pcs while there is room, and
// returns how many it stored and how many return addresses the chain
// holds in all (skipped ones included). Implemented in walk_$GOARCH.s.
//
//go:noescape
func walk(skip int, pcs []uintptr) (n, total int)

const haveFP = true
