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
	"github.com/sqlwatch/sqlwatch/pgxwatch",

	// Data-access libraries, query builders and gorm's dialectors.
	"gorm.io/gorm",
	"gorm.io/driver",
	"gorm.io/plugin",
	"github.com/glebarez/sqlite",
	"github.com/jmoiron/sqlx",
	"entgo.io/ent",
	"github.com/uptrace/bun",
	"github.com/Masterminds/squirrel",
	"github.com/doug-martin/goqu",
	"github.com/georgysavva/scany",
	"github.com/stephenafamo/bob",
	"xorm.io/xorm",

	// database/sql wrappers, which sit between database/sql and sqlwatch
	// when they wrap sqlwatch's driver.
	"github.com/XSAM/otelsql",
	"github.com/uptrace/opentelemetry-go-extra/otelsql",
	"gopkg.in/DataDog/dd-trace-go.v1/contrib/database/sql",
	"github.com/DataDog/dd-trace-go/contrib/database/sql",
	"github.com/qustavo/sqlhooks",
	"github.com/gchaincl/sqlhooks",
	"github.com/luna-duclos/instrumentedsql",

	// Drivers.
	"github.com/go-sql-driver/mysql",
	"github.com/lib/pq",
	"github.com/jackc/pgx",
	"github.com/jackc/puddle", // pgxpool's pool, where an Acquire waits
	"golang.org/x/sync/semaphore",
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/glebarez/go-sqlite",
	"github.com/ncruces/go-sqlite3",
}

// DefaultLibraries returns a fresh copy of the built-in prefixes: the Go
// runtime, reflect, database/sql, sqlmw, sqlwatch, the common data-access
// libraries (gorm, sqlx, ent, bun, squirrel, goqu, scany, bob, xorm), wrappers
// (otelsql, Datadog's sqltrace, sqlhooks, instrumentedsql) and drivers.
func DefaultLibraries() []string {
	return append([]string(nil), defaultLibraries...)
}
