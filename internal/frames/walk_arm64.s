//go:build gc && !purego && !sqlwatch_nofp

#include "textflag.h"

// func Callers(skip int, pcs []uintptr, count bool) (n, total int)
//
// As walk_amd64.s, on the frame-pointer register R29: the saved frame
// pointer is at 0(R29), the return address at 8(R29).
TEXT ·Callers(SB),NOSPLIT,$0-56
	MOVD	skip+0(FP), R6
	MOVD	pcs_base+8(FP), R0
	MOVD	pcs_len+16(FP), R1
	MOVD	R29, R2
	MOVD	$0, R3
	MOVD	$0, R7
	MOVBU	count+32(FP), R8
loop:
	CBZ	R2, done
	TST	$7, R2
	BNE	done
	MOVD	8(R2), R4
	CBZ	R4, done
	ADD	$1, R7
	CBZ	R6, store
	SUB	$1, R6
	B	next
store:
	CMP	R1, R3
	BGE	full
	MOVD	R4, (R0)(R3<<3)
	ADD	$1, R3
	B	next
full:
	CBZ	R8, done
next:
	MOVD	0(R2), R5
	CMP	R2, R5
	BLS	done
	MOVD	R5, R2
	B	loop
done:
	MOVD	R3, n+40(FP)
	MOVD	R7, total+48(FP)
	RET
