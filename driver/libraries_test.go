package driver_test

import (
	"database/sql"
	"testing"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/leak"
)

const testPkg = "github.com/sqlwatch/sqlwatch/driver_test."

// beginInHelper stands for an application's data-access layer: the tx's
// origin is here unless WithLibraries names it.
//
//go:noinline
func beginInHelper(db *sql.DB) (*sql.Tx, error) { return db.Begin() }

// callHelper is the helper's caller, the origin once the helper is a
// library's.
//
//go:noinline
func callHelper(db *sql.DB) (*sql.Tx, error) { return beginInHelper(db) }

// WithLibraries moves a report's origin out of the named code, to its
// caller; prefixes match whole elements and ignore a trailing "/", and
// without the option the helper is the origin.
func TestWithLibraries(t *testing.T) {
	f := func(libs []string, want string) {
		t.Helper()
		opts := []driver.Option{quiet()}
		if libs != nil {
			opts = append(opts, driver.WithLibraries(libs...))
		}
		c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		defer db.Close()
		tx, err := callHelper(db)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		open, err := leak.Snapshot(db)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range open {
			if r.Kind == leak.KindTx {
				if r.Func != want {
					t.Errorf("WithLibraries(%q): origin func %s; want %s", libs, r.Func, want)
				}
				return
			}
		}
		t.Errorf("WithLibraries(%q): no open tx in %v", libs, open)
	}
	f(nil, testPkg+"beginInHelper")
	f([]string{testPkg + "beginInHelper"}, testPkg+"callHelper")
	f([]string{"", testPkg + "beginInHelper/"}, testPkg+"callHelper")
	f([]string{testPkg + "beginIn"}, testPkg+"beginInHelper") // not a whole element
}
