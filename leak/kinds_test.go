package leak_test

import (
	"slices"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// The constants users see name what the tracker counts.
func TestKindsMatchTheTracker(t *testing.T) {
	f := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q; want %q", what, got, want)
		}
	}
	f("misuse kinds", []string{leak.MisuseTxBypass, leak.MisuseConcurrent, leak.MisuseOpenRows, leak.MisuseLockConflict, leak.MisuseConnKilled, leak.MisuseSQLTxLeak}, track.MisuseKinds[:])
	f("MisuseKinds()", leak.MisuseKinds(), track.MisuseKinds[:])
	f("sql_tx_leak states", []string{leak.SQLTxReleased, leak.SQLTxReused}, []string{track.SQLTxReleased, track.SQLTxReused})
	f("death states", []string{leak.DeathIdle, leak.DeathHeld, leak.DeathInTx}, []string{track.DeathIdle, track.DeathHeld, track.DeathInTx})
	if got := leak.Kinds(); !slices.Equal(got, track.Kinds[:]) {
		t.Errorf("Kinds() = %v; want %v", got, track.Kinds)
	}
}

// The slices returned are copies: changing one changes nothing else.
func TestKindsAreCopies(t *testing.T) {
	leak.MisuseKinds()[0] = "changed"
	_ = append(leak.MisuseKinds(), "more")
	leak.Kinds()[0] = 0
	if leak.MisuseKinds()[0] != leak.MisuseTxBypass || leak.Kinds()[0] != leak.KindTx {
		t.Fatal("a returned slice shares the package's list")
	}
}
