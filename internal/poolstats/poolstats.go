// Package poolstats keeps, for a pool whose *sql.DB sqlwatch has been
// given (leak.NewMonitor, metrics.Register), the function that reads its
// database/sql statistics, so that the live page can show them. Keys are
// the pool's *leak.Tracker. Safe for concurrent use; read only when a
// page is served.
package poolstats

import (
	"database/sql"
	"sync"
)

var sources sync.Map // key -> func() sql.DBStats

// Set records f as the statistics of the pool key.
func Set(key any, f func() sql.DBStats) {
	if key != nil && f != nil {
		sources.Store(key, f)
	}
}

// Get returns the statistics function of the pool key, or nil.
func Get(key any) func() sql.DBStats {
	if f, ok := sources.Load(key); ok {
		return f.(func() sql.DBStats)
	}
	return nil
}

// Delete forgets the pool key.
func Delete(key any) { sources.Delete(key) }
