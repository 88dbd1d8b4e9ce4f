package stack

import "strings"

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
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/glebarez/go-sqlite",
	"github.com/ncruces/go-sqlite3",
}

// DefaultLibraries returns the built-in list of library prefixes, whose
// frames are never taken for the origin of a leak: the Go runtime, reflect,
// database/sql, github.com/ngrok/sqlmw, sqlwatch's own packages, the common
// data-access libraries and query builders (gorm and its dialectors, sqlx,
// ent, bun, squirrel, goqu, scany, bob, xorm), the common database/sql
// wrappers (XSAM/otelsql, uptrace's otelsql, Datadog's sqltrace v1 and v2,
// sqlhooks, instrumentedsql) and the common drivers (go-sql-driver/mysql,
// lib/pq, pgx, modernc.org/sqlite, go-sqlite3, glebarez/go-sqlite,
// ncruces/go-sqlite3).
//
// Each call returns a fresh copy, which the caller may modify.
func DefaultLibraries() []string {
	return append([]string(nil), defaultLibraries...)
}

// Filter decides which frames belong to libraries.
// It is immutable once built by [NewFilter] and safe for concurrent use.
// A nil *Filter behaves like NewFilter().
type Filter struct {
	prefixes []string
}

// defaultFilter is the filter a nil *Filter stands for.
var defaultFilter = NewFilter()

// NewFilter returns a Filter for [DefaultLibraries] plus the extra package
// path prefixes, such as the application's own data-access layer
// ("example.com/shop/internal/db"). Empty strings are ignored, as is a
// trailing "/" on a prefix; duplicates are harmless.
func NewFilter(extra ...string) *Filter {
	prefixes := make([]string, 0, len(defaultLibraries)+len(extra))
	prefixes = append(prefixes, defaultLibraries...)
	for _, p := range extra {
		p = strings.TrimRight(p, "/")
		if p != "" {
			prefixes = append(prefixes, p)
		}
	}
	return &Filter{prefixes: prefixes}
}

// IsLibrary reports whether fr's function belongs to one of f's library
// prefixes.
//
// The function name fn, such as "database/sql.(*DB).conn",
// "github.com/a/b.(*T).M.func1" or "gorm.io/gorm.(*DB).Begin[...]", matches
// a prefix p when fn == p or fn starts with p+"." or p+"/". So
// "github.com/sqlwatch/sqlwatch/driver.(*conn).BeginTx" is a library frame
// while "github.com/sqlwatch/sqlwatch/driver_test.TestLeak" (a test in an
// external test package) is not, and "database/sqlx.Open" does not match
// "database/sql". Functions of package main, such as "main.handler", are
// library frames only if the caller passed "main" to NewFilter.
//
// A vendored function name, one containing "/vendor/", is matched on the
// part after the last "/vendor/"; a leading "vendor/", as the standard
// library uses for its own vendored packages, is dropped too. A frame with
// an empty function name is not a library frame.
func (f *Filter) IsLibrary(fr Frame) bool {
	if f == nil {
		f = defaultFilter
	}
	fn := unvendor(fr.Function)
	if fn == "" {
		return false
	}
	for _, p := range f.prefixes {
		if hasPathPrefix(fn, p) {
			return true
		}
	}
	return false
}

// unvendor strips a vendor directory from the function name fn.
func unvendor(fn string) string {
	const vendor = "/vendor/"
	if i := strings.LastIndex(fn, vendor); i >= 0 {
		return fn[i+len(vendor):]
	}
	return strings.TrimPrefix(fn, vendor[1:])
}

// hasPathPrefix reports whether fn is p or starts with p+"." or p+"/".
func hasPathPrefix(fn, p string) bool {
	if !strings.HasPrefix(fn, p) {
		return false
	}
	if len(fn) == len(p) {
		return true
	}
	c := fn[len(p)]
	return c == '.' || c == '/'
}

// Split returns the origin, the first (innermost) frame of frames that is
// not a library frame according to [Filter.IsLibrary], and the application
// stack: every frame from the origin outward that is not a library frame,
// in the order of frames, in a newly allocated slice. Library frames
// between application frames are left out, so app[0] is always origin.
// Frames with an empty function name are skipped, like library frames.
//
// ok is false when no frame qualifies, as for a connection opened by the
// pool's own goroutine (database/sql.(*DB).connectionOpener); then origin is
// the zero Frame and app is nil. frames is expected innermost first, as
// [Frames] returns it, and is not modified.
func (f *Filter) Split(frames []Frame) (origin Frame, app []Frame, ok bool) {
	n := 0
	for _, fr := range frames {
		if f.isApp(fr) {
			n++
		}
	}
	if n == 0 {
		return Frame{}, nil, false
	}
	app = make([]Frame, 0, n)
	for _, fr := range frames {
		if f.isApp(fr) {
			app = append(app, fr)
		}
	}
	return app[0], app, true
}

// isApp reports whether fr is an application frame: one with a known
// function that is not a library frame.
func (f *Filter) isApp(fr Frame) bool {
	return fr.Function != "" && !f.IsLibrary(fr)
}

// Resolve symbolizes s with [Frames] and splits the result with
// [Filter.Split].
func (f *Filter) Resolve(s *Stack) (origin Frame, app []Frame, ok bool) {
	return f.Split(Frames(s))
}
