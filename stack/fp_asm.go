//go:build (amd64 || arm64) && gc && !purego && !sqlwatch_nofp

package stack

// fpCallers walks the frame-pointer chain, passing over the first skip
// return addresses and storing the next ones in pcs; it returns how many
// it stored. Implemented in fp_$GOARCH.s.
//
//go:noescape
func fpCallers(skip int, pcs []uintptr) int

// framePointers is true when Capture walks frame pointers instead of
// calling runtime.Callers.
const framePointers = true
