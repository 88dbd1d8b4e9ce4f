package leak_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/leak"
)

// A pool whose only connection is held while another goroutine waits for
// one stalls; the alert names the holder.
func ExampleNewMonitor() {
	c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), driver.WithDBName("orders"))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	db.SetMaxOpenConns(1)

	alerts := make(chan leak.PoolAlert, 1)
	mon, err := leak.NewMonitor(db, leak.MonitorConfig{
		Interval:  10 * time.Millisecond,
		WaitLimit: 50 * time.Millisecond,
		Logger:    slog.New(slog.DiscardHandler), // the alerts go to OnAlert below
		OnAlert: func(a leak.PoolAlert) {
			select {
			case alerts <- a:
			default:
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mon.Stop()

	held, err := db.Conn(context.Background()) // the only connection
	if err != nil {
		log.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { // waits for it
		defer close(waited)
		if c, err := db.Conn(context.Background()); err == nil {
			c.Close()
		}
	}()

	a := <-alerts
	fmt.Println(a.Reason, a.Stats.InUse, len(a.Holders), a.Holders[0].Func, a.SelfDeadlock)
	held.Close()
	<-waited
	// Output:
	// stall 1 1 github.com/sqlwatch/sqlwatch/leak_test.ExampleNewMonitor false
}
