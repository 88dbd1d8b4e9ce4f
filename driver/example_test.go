package driver_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"time"

	"modernc.org/sqlite"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// Wrap the registered "sqlite" driver under a new name, and see a leaked
// transaction reported with the function that began it.
func ExampleRegisterByName() {
	reports := make(chan leak.Report, 1)
	err := driver.RegisterByName("sqlite+example", "sqlite",
		driver.WithThreshold(leak.KindTx, 50*time.Millisecond),
		driver.WithLogger(slog.New(slog.DiscardHandler)), // the reports go to the func below
		driver.WithReportFunc(func(r leak.Report) {
			if !r.Released {
				reports <- r
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open("sqlite+example", "file:register-example?mode=memory")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	tx, err := db.Begin() // never committed: a leak
	if err != nil {
		log.Fatal(err)
	}
	r := <-reports
	fmt.Println(r.Kind, r.Func)
	tx.Rollback()
	// Output:
	// tx github.com/sqlwatch/sqlwatch/driver_test.ExampleRegisterByName
}

// Wrap a connector for sql.OpenDB; each pool has its own counters.
func ExampleNewConnector() {
	inner, err := sqlite.NewConnector("file:connector-example?mode=memory")
	if err != nil {
		log.Fatal(err)
	}
	c, err := driver.NewConnector(inner, driver.WithDBName("orders"))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()

	if _, err := db.Exec("CREATE TABLE items (id INTEGER PRIMARY KEY)"); err != nil {
		log.Fatal(err)
	}
	st, err := leak.StatsOf(db)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.DBName, st.Reported)
	// Output:
	// orders 0
}

// Reach the driver's own connection from sql.Conn.Raw.
func ExampleUnwrap() {
	c, err := driver.NewConnector(must(sqlite.NewConnector("file:unwrap-example?mode=memory")))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	err = conn.Raw(func(dc any) error {
		fmt.Printf("%T\n", driver.Unwrap(dc)) // dc itself is sqlwatch's conn

		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// *sqlite.conn
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
