package stack

// defaultLibraries is the built-in list behind DefaultLibraries. It must not
// be modified.
var defaultLibraries = []string{
	// The Go runtime and the standard library's SQL layer.
	"runtime",
	"reflect",
	"database/sql",
	"github.com/ngrok/sqlmw",

	// sqlwatch itself. The module root is deliberately absent: a prefix
	// for it would also cover the external test packages (such as
	// ".../driver_test"), and those are application code.
	"github.com/sqlwatch/sqlwatch/driver",
	"github.com/sqlwatch/sqlwatch/leak",
	"github.com/sqlwatch/sqlwatch/stack",
	"github.com/sqlwatch/sqlwatch/metrics",
	"github.com/sqlwatch/sqlwatch/internal",

	// Data-access libraries.
	"gorm.io/gorm",
	"gorm.io/driver",
	"gorm.io/plugin",
	"github.com/jmoiron/sqlx",
	"entgo.io/ent",
	"github.com/uptrace/bun",

	// Drivers.
	"github.com/go-sql-driver/mysql",
	"github.com/lib/pq",
	"github.com/jackc/pgx",
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
}

// DefaultLibraries returns the built-in list of library prefixes, whose
// frames are never taken for the origin of a leak: the Go runtime, reflect,
// database/sql, github.com/ngrok/sqlmw, sqlwatch's own packages, the common
// data-access libraries (gorm, sqlx, ent, bun) and the common drivers
// (go-sql-driver/mysql, lib/pq, pgx, modernc.org/sqlite, go-sqlite3).
//
// Each call returns a fresh copy, which the caller may modify.
func DefaultLibraries() []string {
	return append([]string(nil), defaultLibraries...)
}
