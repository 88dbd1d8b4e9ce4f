//go:build !amd64 || !gc || purego || sqlwatch_notsc

package clock

// useTSC is false: Now is the runtime's monotonic clock.
const useTSC = false

// Now returns the nanoseconds elapsed since Epoch.
func Now() int64 { return sinceEpoch() }
