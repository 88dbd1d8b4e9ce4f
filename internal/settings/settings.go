// Package settings carries the options of package driver (driver.Option)
// to the other instrumentations that accept them (pgxwatch), so that one
// set of options, with one set of semantics and errors, configures both.
package settings

import "github.com/sqlwatch/sqlwatch/internal/track"

// Settings is what a list of driver options sets.
type Settings struct {
	// DBName is driver.WithDBName's name, or "".
	DBName string
	// Leak is the tracker configuration the options set; Filter is set
	// when driver.WithLibraries was given.
	Leak track.Config
	// Interceptor is true when driver.WithInterceptor was given: an
	// ngrok/sqlmw interceptor, which only database/sql calls.
	Interceptor bool
}

// Build applies opts, a []driver.Option, and returns what they set, or
// the error (wrapping driver.ErrInvalidOption) of the first invalid one.
// Package driver sets it when it is initialized; a package that calls it
// imports driver (its options' type) and so finds it set.
var Build func(opts any) (Settings, error)
