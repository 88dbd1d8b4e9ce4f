//go:build gc && !purego && !sqlwatch_nofp

#include "textflag.h"

// func Callers(skip int, pcs []uintptr, count bool) (n, total int)
//
// A frame's saved frame pointer is at 0(BP), its return address at
// 8(BP). The walk stops at a zero or misaligned frame pointer, a zero
// return address, or a frame pointer that does not increase; and, unless
// count, when pcs is full.
TEXT ·Callers(SB),NOSPLIT,$0-56
	MOVQ	skip+0(FP), R8
	MOVQ	pcs_base+8(FP), DI
	MOVQ	pcs_len+16(FP), CX
	MOVQ	BP, AX
	XORQ	DX, DX
	XORQ	SI, SI
	MOVBLZX	count+32(FP), R9
loop:
	TESTQ	AX, AX
	JEQ	done
	TESTQ	$7, AX
	JNE	done
	MOVQ	8(AX), BX
	TESTQ	BX, BX
	JEQ	done
	INCQ	SI
	TESTQ	R8, R8
	JEQ	store
	DECQ	R8
	JMP	next
store:
	CMPQ	DX, CX
	JGE	full
	MOVQ	BX, (DI)(DX*8)
	INCQ	DX
	JMP	next
full:
	TESTQ	R9, R9
	JEQ	done
next:
	MOVQ	0(AX), BX
	CMPQ	BX, AX
	JLS	done
	MOVQ	BX, AX
	JMP	loop
done:
	MOVQ	DX, n+40(FP)
	MOVQ	SI, total+48(FP)
	RET
