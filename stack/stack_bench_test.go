package stack_test

import (
	"fmt"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
)

// atDepth runs fn with about n extra frames on the stack.
//
//go:noinline
func atDepth(n int, fn func()) {
	if n <= 0 {
		fn()
		return
	}
	atDepth(n-1, fn)
}

func BenchmarkCapture(b *testing.B) {
	for _, depth := range []int{4, 16, callstack.Depth, 4 * callstack.Depth} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			b.ReportAllocs()
			var s callstack.Stack
			atDepth(depth, func() {
				for b.Loop() {
					s.Capture(0)
				}
			})
			if s.Len() == 0 {
				b.Fatal("captured nothing")
			}
		})
	}
}

func BenchmarkResolve(b *testing.B) {
	filter := callstack.NewFilter("example.com/shop/internal/db")
	for _, depth := range []int{4, 16, callstack.Depth} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			b.ReportAllocs()
			var s callstack.Stack
			atDepth(depth, func() { s.Capture(0) })
			for b.Loop() {
				if _, _, ok := filter.Resolve(&s); !ok {
					b.Fatal("no origin")
				}
			}
		})
	}
}

func BenchmarkSplit(b *testing.B) {
	frames, extra := readFixture(b, stacksDir+"/gorm_automigrate_mysql.txt")
	filter := callstack.NewFilter(extra...)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := filter.Split(frames); !ok {
			b.Fatal("no origin")
		}
	}
}
