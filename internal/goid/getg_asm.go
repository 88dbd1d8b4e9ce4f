//go:build (amd64 || arm64) && gc && !purego

package goid

import "unsafe"

// haveGetg reports whether getg is implemented for this build.
const haveGetg = true

// getg returns the runtime's g pointer (*runtime.g) of the calling
// goroutine. It is implemented in getg_$GOARCH.s.
func getg() unsafe.Pointer
