//go:build !(amd64 || arm64) || !gc || purego

package goid

import "unsafe"

// haveGetg reports whether getg is implemented for this build. Without it,
// Get always parses runtime.Stack.
const haveGetg = false

// getg is never called when haveGetg is false.
func getg() unsafe.Pointer { return nil }
