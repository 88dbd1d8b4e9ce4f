//go:build (amd64 || arm64) && gc && !purego && !sqlwatch_nofp

package frames

// Callers follows the frame-pointer chain from its caller's frame: it
// passes over the first skip return addresses and stores the next ones
// in pcs, the first returning into the caller of Callers' caller. It
// returns how many it stored and, with count, how many return addresses
// the chain holds in all (skipped ones included), walking on to the
// goroutine's outermost frame; without count it stops when pcs is full
// (callstack.Stack.Capture) and total counts only what it walked. It does
// not allocate. Implemented in walk_$GOARCH.s.
//
//go:noescape
func Callers(skip int, pcs []uintptr, count bool) (n, total int)

const haveFP = true
