package goid

// Slow is the runtime.Stack-parsing path, exported for tests and benchmarks.
var Slow = slow

// HaveAsm reports whether this build has the assembly getg.
const HaveAsm = haveGetg

// Offset returns the calibrated offset of goid in runtime.g and whether the
// fast path is enabled.
func Offset() (uintptr, bool) {
	once.Do(calibrate)
	return goidOff, fast
}
