// Package testutil holds what sqlwatch's tests share; nothing else
// imports it.
package testutil

import (
	"bytes"
	"sync"
)

// LockedBuffer is a log destination that a logger writes (the watchdog,
// a monitor, a program under test) while the test reads it. The zero
// value is ready; it is safe for concurrent use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
