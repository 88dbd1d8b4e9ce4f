#include "textflag.h"

// func fpCallers(pcs []uintptr) int
//
// Walks the frame-pointer chain from the caller's frame and stores each
// frame's return address in pcs. It stops at a zero, misaligned or
// non-increasing frame pointer, or when pcs is full.
TEXT ·fpCallers(SB),NOSPLIT,$0-32
	MOVQ	pcs_base+0(FP), DI
	MOVQ	pcs_len+8(FP), CX
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
	MOVQ	BX, (DI)(DX*8)
	INCQ	DX
	MOVQ	0(AX), BX
	CMPQ	BX, AX
	JLS	done
	MOVQ	BX, AX
	JMP	loop
done:
	MOVQ	DX, ret+24(FP)
	RET
