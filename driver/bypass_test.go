package driver_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// bypassHandler begins a tx, runs a statement in it and, unless leak,
// commits; then it reads on the pool: correct code, whatever an earlier
// call on the same goroutine leaked.
//
//go:noinline
func bypassHandler(t *testing.T, db *sql.DB, tbl string, leak bool) *sql.Tx {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if leak {
		return tx
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 2").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return nil
}

// TestBypassRerunAfterLeak (issue 15, item 3): a handler that leaked its
// tx, called again on the same goroutine (a keep-alive connection's
// goroutine does this), is a leak, not a bypass: the second call's BEGIN
// and its pool read after COMMIT raise nothing. A genuine bypass after
// that is still reported, naming the running tx's line.
func TestBypassRerunAfterLeak(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		// One call site: the leaky call's frame and the next calls' are
		// at the same place, as on a keep-alive connection's goroutine.
		for i := range 4 {
			if tx := bypassHandler(t, db, tbl, i == 0); tx != nil {
				defer tx.Rollback()
			}
		}
		ch.none(t)
		if n := driver.TrackerOf(db).Stats().Misuse[leak.MisuseTxBypass]; n != 0 {
			t.Fatalf("tx_bypass counted %d; want 0", n)
		}

		// A real bypass, from the function holding a tx.
		ctx := context.Background()
		begin := nextLine()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var n int
		bypass := nextLine()
		if err := db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 2").Scan(&n); err != nil {
			t.Fatal(err)
		}
		m := ch.wait(t, leak.MisuseTxBypass)
		checkMisuse(t, m, bypass, begin)
	})
}

// TestBypassTwoTxsOnPurpose (item 4): one goroutine beginning a second
// tx while its first is open (comparing isolation levels, say) is no
// bypass; a statement on the pool outside both is, and its report names
// the statement, never an empty query.
func TestBypassTwoTxsOnPurpose(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		ctx := context.Background()
		tx1, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: b.name != "sqlite"})
		if err != nil {
			t.Fatal(err)
		}
		defer tx1.Rollback()
		var n int
		if err := tx1.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		begin2 := nextLine()
		tx2, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx2.Rollback()
		if err := tx2.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 2").Scan(&n); err != nil {
			t.Fatal(err)
		}
		ch.none(t)

		bypass := nextLine()
		if err := db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 2").Scan(&n); err != nil {
			t.Fatal(err)
		}
		m := ch.wait(t, leak.MisuseTxBypass)
		// Both txs are the same frame's: the newest is named.
		checkMisuse(t, m, bypass, begin2)
		if !strings.HasPrefix(m.Here.Query, "SELECT n FROM") {
			t.Errorf("bypass report's query %q; want the SELECT", m.Here.Query)
		}
	})
}

// TestBypassKeepAliveHTTP (item 3): an HTTP server whose handler leaks a
// tx on one request, then serves correct requests on the same
// keep-alive connection (the same goroutine): no tx_bypass.
func TestBypassKeepAliveHTTP(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		var leaked []*sql.Tx
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tx := bypassHandler(t, db, tbl, r.URL.Query().Get("leak") == "1"); tx != nil {
				leaked = append(leaked, tx) // one request at a time: the client waits
			}
			io.WriteString(w, "ok")
		}))
		defer srv.Close()
		client := srv.Client()
		get := func(path string) {
			resp, err := client.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		get("/?leak=1")
		for range 5 {
			get("/")
		}
		for _, tx := range leaked {
			tx.Rollback()
		}
		ch.none(t)
		if n := driver.TrackerOf(db).Stats().Misuse[leak.MisuseTxBypass]; n != 0 {
			t.Fatalf("tx_bypass counted %d; want 0", n)
		}
	})
}

// leakTxs begins n txs and returns them open: this function returns, so
// they are leaks, not held.
//
//go:noinline
func leakTxs(t *testing.T, db *sql.DB, n int) []*sql.Tx {
	var out []*sql.Tx
	for range n {
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tx)
	}
	return out
}

// TestBypassFloodFromLeakedTxs (item 9): a goroutine owning leaked txs
// runs many statements on the pool: none is a candidate, nothing is
// queued or dropped. Then a genuine bypass repeated 5,000 times is
// logged once, counted 5,000 times, and drops nothing: a real event
// after it (a misuse of another kind) still gets through.
func TestBypassFloodFromLeakedTxs(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		db.SetMaxOpenConns(8)
		ctx := context.Background()
		txs := leakTxs(t, db, 3)
		defer func() {
			for _, tx := range txs {
				tx.Rollback()
			}
		}()
		var n int
		for range 5000 {
			if err := db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		ch.none(t)
		tr := driver.TrackerOf(db)
		if st := tr.Stats(); st.Misuse[leak.MisuseTxBypass] != 0 || st.Dropped != 0 {
			t.Fatalf("after 5,000 statements with leaked txs: tx_bypass %d, dropped %d; want 0, 0",
				st.Misuse[leak.MisuseTxBypass], st.Dropped)
		}

		begin := nextLine()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var bypass string
		for range 5000 {
			bypass = nextLine()
			if err := db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		m := ch.wait(t, leak.MisuseTxBypass)
		checkMisuse(t, m, bypass, begin)
		ch.none(t) // once
		if st := tr.Stats(); st.Misuse[leak.MisuseTxBypass] != 5000 || st.Dropped != 0 {
			t.Fatalf("a bypass repeated 5,000 times: counted %d, dropped %d; want 5000, 0",
				st.Misuse[leak.MisuseTxBypass], st.Dropped)
		}
		// A real event of another kind still arrives.
		rows, err := tx.QueryContext(ctx, "SELECT id FROM "+tbl)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		rows.Next()
		if b.name != "sqlite" && b.name != "postgres" {
			return // go-sql-driver and pgx fail a statement over open rows (busy buffer, conn busy): see TestOpenRowsAndConcurrent
		}
		tx.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 2").Scan(&n)
		ch.wait(t, leak.MisuseOpenRows)
	})
}

// readFirstHandler reads on the pool, then begins a tx and, unless
// leak, commits it: correct code, run again on the same goroutine after
// a call that leaked.
//
//go:noinline
func readFirstHandler(t *testing.T, db *sql.DB, tbl string, leak bool) *sql.Tx {
	ctx := context.Background()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 2").Scan(&n); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if leak {
		return tx
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return nil
}

// TestBypassRerunReadsFirst: the rerun of a handler that leaked, which
// reads on the pool before its own BEGIN, is not a bypass of the leaked
// tx (its frame is at the same place, but calling from before its BEGIN).
func TestBypassRerunReadsFirst(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		for i := range 4 { // one call site, as in TestBypassRerunAfterLeak
			if tx := readFirstHandler(t, db, tbl, i == 0); tx != nil {
				defer tx.Rollback()
			}
		}
		ch.none(t)
		if n := driver.TrackerOf(db).Stats().Misuse[leak.MisuseTxBypass]; n != 0 {
			t.Fatalf("tx_bypass counted %d; want 0", n)
		}
	})
}

// beginHandler is bypassHandler with db.Begin, which the compiler
// inlines into it: its frame is still the one that began the tx.
//
//go:noinline
func beginHandler(t *testing.T, db *sql.DB, tbl string, leak bool) *sql.Tx {
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT n FROM " + tbl + " WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if leak {
		return tx
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT n FROM " + tbl + " WHERE id = 2").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return nil
}

// TestBypassInlinedBegin: through db.Begin (inlined into the caller), a
// rerun after a leak is no bypass, and a real bypass names both lines.
func TestBypassInlinedBegin(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		for i := range 4 {
			if tx := beginHandler(t, db, tbl, i == 0); tx != nil {
				defer tx.Rollback()
			}
		}
		ch.none(t)
		if n := driver.TrackerOf(db).Stats().Misuse[leak.MisuseTxBypass]; n != 0 {
			t.Fatalf("tx_bypass counted %d; want 0", n)
		}
		begin := nextLine()
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var n int
		bypass := nextLine()
		if err := db.QueryRow("SELECT n FROM " + tbl + " WHERE id = 2").Scan(&n); err != nil {
			t.Fatal(err)
		}
		checkMisuse(t, ch.wait(t, leak.MisuseTxBypass), bypass, begin)
	})
}
