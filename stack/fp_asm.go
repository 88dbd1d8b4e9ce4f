//go:build (amd64 || arm64) && gc && !purego && !sqlwatch_nofp

package stack

// fpCallers walks the frame-pointer chain, storing return addresses in
// pcs; it returns how many it stored. Implemented in fp_$GOARCH.s.
//
//go:noescape
func fpCallers(pcs []uintptr) int

// framePointers is true when Capture walks frame pointers instead of
// calling runtime.Callers.
const framePointers = true
