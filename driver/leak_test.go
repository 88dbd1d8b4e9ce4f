package driver_test

import (
	"context"
	"testing"

	"github.com/sqlwatch/sqlwatch/leak"
)

func TestLeakedTxNamesTheLine(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b)
		ctx := context.Background()
		line := nextLine()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		r := ch.wait(t, leak.KindTx, false)
		checkOrigin(t, r, line)
		if r.Statements != 1 || r.LastQuery != "SELECT 1" {
			t.Errorf("statements, last query: got %d, %q; want 1, %q", r.Statements, r.LastQuery, "SELECT 1")
		}
		if r.Age < r.Threshold {
			t.Errorf("age %v below threshold %v", r.Age, r.Threshold)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		rel := ch.wait(t, leak.KindTx, true)
		checkOrigin(t, rel, line)
		if rel.Held < r.Age {
			t.Errorf("held %v shorter than reported age %v", rel.Held, r.Age)
		}
		ch.none(t, leak.KindConn) // the tx's conn is not reported a second time
	})
}

func TestLeakedConnNamesTheLine(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b)
		ctx := context.Background()
		line := nextLine()
		conn, err := db.Conn(ctx) // a used conn: the checkout starts here
		if err != nil {
			t.Fatal(err)
		}
		if _, err = conn.ExecContext(ctx, "SELECT 2"); err != nil {
			t.Fatal(err)
		}
		r := ch.wait(t, leak.KindConn, false)
		checkOrigin(t, r, line)
		if r.LastQuery != "SELECT 2" {
			t.Errorf("last query: got %q; want %q", r.LastQuery, "SELECT 2")
		}
		conn.Close()
		checkOrigin(t, ch.wait(t, leak.KindConn, true), line)
	})
}

func TestLeakedRowsNameTheLine(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b)
		line := nextLine()
		rows, err := db.QueryContext(context.Background(), "SELECT 3")
		if err != nil {
			t.Fatal(err)
		}
		checkOrigin(t, ch.wait(t, leak.KindRows, false), line)
		rows.Close()
		checkOrigin(t, ch.wait(t, leak.KindRows, true), line)
		ch.none(t, leak.KindConn) // the rows' conn is not reported a second time
	})
}

func TestLeakedStmtNamesTheLine(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b)
		line := nextLine()
		st, err := db.PrepareContext(context.Background(), "SELECT 4")
		if err != nil {
			t.Fatal(err)
		}
		checkOrigin(t, ch.wait(t, leak.KindStmt, false), line)
		st.Close()
		checkOrigin(t, ch.wait(t, leak.KindStmt, true), line)
	})
}
