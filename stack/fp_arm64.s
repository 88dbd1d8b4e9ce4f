//go:build gc && !purego && !sqlwatch_nofp

#include "textflag.h"

// func fpCallers(skip int, pcs []uintptr) int
//
// Walks the frame-pointer chain (R29) from the caller's frame; see
// fp_amd64.s. On arm64 the saved frame pointer is at 0(FP) and the
// return address at 8(FP).
TEXT ·fpCallers(SB),NOSPLIT,$0-40
	MOVD	skip+0(FP), R6
	MOVD	pcs_base+8(FP), R0
	MOVD	pcs_len+16(FP), R1
	MOVD	R29, R2
	MOVD	$0, R3
loop:
	CMP	R1, R3
	BGE	done
	CBZ	R2, done
	TST	$7, R2
	BNE	done
	MOVD	8(R2), R4
	CBZ	R4, done
	CBZ	R6, store
	SUB	$1, R6
	B	next
store:
	MOVD	R4, (R0)(R3<<3)
	ADD	$1, R3
next:
	MOVD	0(R2), R5
	CMP	R2, R5
	BLS	done
	MOVD	R5, R2
	B	loop
done:
	MOVD	R3, ret+32(FP)
	RET
