package driver_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/leak"
)

// TestOverOpenRowsNamesOldestOpen: a statement over open rows names the
// oldest rows still open, even after a later result set on the same tx
// opened and closed in between (SQLite allows several open result sets
// on one conn; elsewhere the second query fails and changes nothing).
func TestOverOpenRowsNamesOldestOpen(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := openMisuse(t, b)
		tbl := table(t, db, b)
		ctx := context.Background()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		first := nextLine()
		rows, err := tx.QueryContext(ctx, "SELECT id FROM "+tbl+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		rows.Next()

		// A second result set, opened and closed while the first is open.
		second := nextLine()
		r2, err := tx.QueryContext(ctx, "SELECT n FROM "+tbl)
		if err == nil {
			for r2.Next() {
			}
			r2.Close()
		}
		checkMisuse(t, ch.wait(t, leak.MisuseOpenRows), second, first)

		// Another goroutine: concurrent, naming the first rows and their
		// goroutine.
		var other string
		done := make(chan struct{})
		go func() {
			defer close(done)
			other = nextLine()
			tx.ExecContext(ctx, "SELECT 1")
		}()
		<-done
		m := ch.wait(t, leak.MisuseConcurrent)
		checkMisuse(t, m, other, first)
		if m.There.Goroutine == 0 || m.There.Goroutine == m.Here.Goroutine || m.There.Query == "" {
			t.Errorf("concurrent: there goroutine %d, query %q; here goroutine %d", m.There.Goroutine, m.There.Query, m.Here.Goroutine)
		}

		// This goroutine again: open_rows, naming the first rows.
		again := nextLine()
		tx.ExecContext(ctx, "SELECT 2")
		checkMisuse(t, ch.wait(t, leak.MisuseOpenRows), again, first)

		if b.name == "sqlite" {
			// Rows of another goroutine still open beside this
			// goroutine's: a statement here is concurrent use, naming
			// the other goroutine's rows.
			var theirs string
			var r3 interface{ Close() error }
			done := make(chan struct{})
			go func() {
				defer close(done)
				theirs = nextLine()
				rows, err := tx.QueryContext(ctx, "SELECT id FROM "+tbl)
				if err != nil {
					t.Error(err)
					return
				}
				rows.Next()
				r3 = rows
			}()
			<-done
			checkMisuse(t, ch.wait(t, leak.MisuseConcurrent), theirs, first)
			here := nextLine()
			tx.ExecContext(ctx, "SELECT 3")
			checkMisuse(t, ch.wait(t, leak.MisuseConcurrent), here, theirs)
			if r3 != nil {
				r3.Close()
			}
		}

		// Once closed, nothing more. (MySQL and pgx may also report
		// the conn they gave up on as conn_killed: not this test's
		// subject.)
		rows.Close()
		if _, err := tx.ExecContext(ctx, "SELECT 4"); err != nil && b.name == "sqlite" {
			t.Fatal(err)
		}
		ch.noneOf(t, leak.MisuseOpenRows, leak.MisuseConcurrent)
	})
}

// noneOf fails on a report of one of kinds arriving within a few
// watchdog passes.
func (ch misuses) noneOf(t *testing.T, kinds ...string) {
	t.Helper()
	timeout := time.After(300 * time.Millisecond)
	for {
		select {
		case m := <-ch:
			if slices.Contains(kinds, m.Kind) {
				t.Errorf("unexpected %s report: %s ← %s", m.Kind, m.Here.Origin, m.There.Origin)
			}
		case <-timeout:
			return
		}
	}
}
