#include "textflag.h"

// func fpCallers(pcs []uintptr) int
//
// Walks the frame-pointer chain (R29) from the caller's frame; see
// fp_amd64.s. On arm64 the saved frame pointer is at 0(FP) and the
// return address at 8(FP).
TEXT ·fpCallers(SB),NOSPLIT,$0-32
	MOVD	pcs_base+0(FP), R0
	MOVD	pcs_len+8(FP), R1
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
	MOVD	R4, (R0)(R3<<3)
	ADD	$1, R3
	MOVD	0(R2), R5
	CMP	R2, R5
	BLS	done
	MOVD	R5, R2
	B	loop
done:
	MOVD	R3, ret+24(FP)
	RET
