// Package settings carries the options of package driver (driver.Option)
// to the other instrumentations that accept them (pgxwatch), so that one
// set of options, with one set of semantics and errors, configures both.
package settings

import (
	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

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

// PoolName formats a server pool's default name as package driver names
// one from its DSN: host:port/database (an IPv6 host in brackets, control
// characters replaced), never the user or password. Package driver sets
// it when it is initialized, as Build.
var PoolName func(host, port, database string) string

// TrackerConfig is the tracker configuration of one pool: what the
// options set, with the recorder's buckets, the pool's name (fallback
// unless driver.WithDBName gave one), the default library filter and the
// SQL dialect (dialect unless set), as every instrumentation opens it.
func (s Settings) TrackerConfig(fallback, dialect string) track.Config {
	cfg := s.Leak
	cfg.HoldBuckets = record.HoldBounds()
	cfg.DurationSlots, cfg.DurationBuckets = record.NumOps, record.StatementBounds()
	cfg.DBName = s.DBName
	if cfg.DBName == "" {
		cfg.DBName = fallback
	}
	if cfg.Filter == nil {
		cfg.Filter = callstack.NewFilter()
	}
	if cfg.SQLDialect == "" {
		cfg.SQLDialect = dialect
	}
	return cfg
}
