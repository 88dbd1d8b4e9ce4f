package leak_test

import (
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/leak"
)

// printT stands in for a *testing.T: it prints the first lines of the
// failure, with the parts that change from run to run masked.
type printT struct{}

var varying = regexp.MustCompile(`(open for |goroutine )[^,\s]+`)

func (printT) Error(args ...any) {
	lines := strings.Split(fmt.Sprint(args...), "\n")
	for _, l := range lines[:min(3, len(lines))] {
		fmt.Println(varying.ReplaceAllString(l, "${1}…"))
	}
}

// A test that leaves a transaction open fails with the line that began
// it. In a real test, pass the test's t:
//
//	t.Cleanup(leak.Check(t, leak.Pool(db)))
func ExampleCheck() {
	// Any pool opened through sqlwatch; here, the in-memory fake driver.
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), driver.WithDBName("orders"))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()

	var t printT
	done := leak.Check(t, leak.Pool(db), leak.RetryFor(10*time.Millisecond))

	tx, err := db.Begin() // the bug: no Commit or Rollback below
	if err != nil {
		log.Fatal(err)
	}
	tx.Exec("INSERT INTO orders (item) VALUES (?)", "widget")

	done() // as the test ends
	tx.Rollback()
	// Output:
	// found 1 unexpected open database resource opened through sqlwatch:
	// [tx] open for …, begun at leak/example_gate_test.go:47 (leak_test.ExampleCheck), goroutine …
	//     statements: 1; last query: INSERT INTO orders (item) VALUES (?)
}

// TestMain fails the package's tests when they leave anything open.
func ExampleVerifyTestMain() {
	var m *testing.M // in TestMain(m *testing.M), the m it is given

	leak.VerifyTestMain(m, leak.IgnoreOrigin("cache/warm.go:"))
}

// Mount the live page next to net/http/pprof, behind the same protection.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /debug/sqlwatch", leak.Handler())
	log.Fatal(http.ListenAndServe("127.0.0.1:6060", mux)) // a loopback-only admin listener
}
