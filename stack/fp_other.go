//go:build !((amd64 || arm64) && gc && !purego && !sqlwatch_nofp)

package stack

func fpCallers(skip int, pcs []uintptr) int { return 0 }

const framePointers = false
