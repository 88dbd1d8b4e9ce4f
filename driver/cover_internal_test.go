package driver

import (
	"context"
	"database/sql"
	"log/slog"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/fakedb"
)

// rawConn returns sqlwatch's conn behind dc, the value sql.Conn.Raw hands
// its function.
func rawConn(t *testing.T, dc any) *conn {
	switch c := dc.(type) {
	case *conn:
		return c
	case *connE:
		return c.conn
	case *connQ:
		return c.conn
	case *connR:
		return c.conn
	case *connEQ:
		return c.conn
	case *connER:
		return c.conn
	case *connQR:
		return c.conn
	case *connEQR:
		return c.conn
	}
	t.Fatalf("Raw handed %T, not a sqlwatch conn", dc)
	return nil
}

// TestCoverRecordsAgree: the driver's record of a conn's open tx and rows
// (conn.tx, conn.openRows) and the tracker's cover of its checkout
// (Resource.CoverState, read by the watchdog) are two records of the same
// events (docs/design.md); between calls they agree, through a tx, rows
// in it, rows outside it and two rows open at once.
func TestCoverRecordsAgree(t *testing.T) {
	ctx := context.Background()
	c, err := NewConnector(fakedb.New(fakedb.Full).Connector(), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	check := func(step string, wantCovers int, wantTx bool) {
		t.Helper()
		err := sc.Raw(func(dc any) error {
			c := rawConn(t, dc)
			covers, inTx := c.res.CoverState()
			driverCovers := c.openRows
			if c.tx != nil {
				driverCovers++
			}
			if covers != driverCovers || inTx != (c.tx != nil) {
				t.Errorf("%s: tracker covers=%d inTx=%v; driver tx=%v openRows=%d", step, covers, inTx, c.tx != nil, c.openRows)
			}
			if covers != wantCovers || inTx != wantTx {
				t.Errorf("%s: covers=%d inTx=%v; want %d, %v", step, covers, inTx, wantCovers, wantTx)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check("idle checkout", 0, false)
	tx, err := sc.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("tx open", 1, true)
	rows, err := tx.QueryContext(ctx, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	check("rows in the tx", 2, true)
	rows.Close()
	check("rows closed", 1, true)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	check("committed", 0, false)
	r1, err := sc.QueryContext(ctx, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := sc.QueryContext(ctx, "SELECT 2")
	if err != nil {
		t.Fatal(err)
	}
	check("two rows", 2, false)
	r1.Close()
	check("one rows", 1, false)
	r2.Close()
	check("none", 0, false)
}
