//go:build gc && !purego

#include "textflag.h"

// func getg() unsafe.Pointer
//
// ABI0 code cannot rely on R14 holding g (that is an ABIInternal
// convention), so load g from thread-local storage. The assembler rewrites
// (TLS) into the right access sequence for the OS and build mode, as it does
// for the runtime's own get_tls/g() macros.
TEXT ·getg(SB), NOSPLIT, $0-8
	MOVQ (TLS), AX
	MOVQ AX, ret+0(FP)
	RET
