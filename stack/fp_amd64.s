//go:build gc && !purego && !sqlwatch_nofp

#include "textflag.h"

// func fpCallers(skip int, pcs []uintptr) int
//
// Walks the frame-pointer chain from the caller's frame, passes over the
// first skip return addresses and stores the next ones in pcs. It stops
// at a zero, misaligned or non-increasing frame pointer, or when pcs is
// full.
TEXT ·fpCallers(SB),NOSPLIT,$0-40
	MOVQ	skip+0(FP), R8
	MOVQ	pcs_base+8(FP), DI
	MOVQ	pcs_len+16(FP), CX
	MOVQ	BP, AX
	XORQ	DX, DX
loop:
	CMPQ	DX, CX
	JGE	done
	TESTQ	AX, AX
	JEQ	done
	TESTQ	$7, AX
	JNE	done
	MOVQ	8(AX), BX
	TESTQ	BX, BX
	JEQ	done
	TESTQ	R8, R8
	JEQ	store
	DECQ	R8
	JMP	next
store:
	MOVQ	BX, (DI)(DX*8)
	INCQ	DX
next:
	MOVQ	0(AX), BX
	CMPQ	BX, AX
	JLS	done
	MOVQ	BX, AX
	JMP	loop
done:
	MOVQ	DX, ret+32(FP)
	RET
