package metrics_test

import (
	"database/sql"
	"fmt"
	"log"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"modernc.org/sqlite"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/metrics"
)

// Register a pool's collector, then scrape: every series carries the
// pool's db_name.
func ExampleRegister() {
	inner, err := sqlite.NewConnector("file:metrics-example?mode=memory")
	if err != nil {
		log.Fatal(err)
	}
	c, err := driver.NewConnector(inner, driver.WithDBName("orders"))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()

	reg := prometheus.NewPedanticRegistry()
	if err := metrics.Register(reg, db); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE items (id INTEGER PRIMARY KEY)"); err != nil {
		log.Fatal(err)
	}

	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		if name := f.GetName(); strings.HasPrefix(name, "sqlwatch_") {
			for _, l := range f.GetMetric()[0].GetLabel() {
				if l.GetName() == "db_name" {
					fmt.Println(name, l.GetValue())
				}
			}
		}
	}
	// Output:
	// sqlwatch_conn_checked_out orders
	// sqlwatch_conn_deaths_total orders
	// sqlwatch_conn_hold_seconds orders
	// sqlwatch_conn_oldest_checkout_seconds orders
	// sqlwatch_errors_total orders
	// sqlwatch_leaks_total orders
	// sqlwatch_misuse_total orders
	// sqlwatch_pool_wait_alerts_total orders
	// sqlwatch_statement_duration_seconds orders
	// sqlwatch_tx_duration_seconds orders
	// sqlwatch_tx_oldest_age_seconds orders
	// sqlwatch_tx_open orders
}
