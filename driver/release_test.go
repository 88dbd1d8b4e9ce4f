package driver_test

import (
	"context"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// TestReleaseAfterDBClose: a leaked tx, reported, then DB.Close, then
// the tx's Rollback: the release line still comes, and nothing is
// dropped.
func TestReleaseAfterDBClose(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, reps := open(t, b)
		ctx := context.Background()
		line := nextLine()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		checkOrigin(t, reps.wait(t, leak.KindTx, false), line)
		tr := db.Driver().(interface{ Tracker() *track.Tracker }).Tracker()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback after DB.Close: %v", err)
		}
		// Close logs it before Rollback returns.
		var rel *leak.Report
	drain:
		for {
			select {
			case r := <-reps:
				if r.Kind == leak.KindTx && r.Released {
					rel = &r
				}
			default:
				break drain
			}
		}
		if rel == nil {
			t.Fatal("no release report of the tx once Rollback returned")
		}
		checkOrigin(t, *rel, line)
		if st := tr.Stats(); st.Dropped != 0 || st.Released < 1 {
			t.Errorf("Released %d, Dropped %d; want at least 1 and 0", st.Released, st.Dropped)
		}
	})
}
