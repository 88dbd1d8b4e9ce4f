package track

import (
	"strings"
	"testing"
	"time"
)

func TestMisuseLoggedOncePerSiteCountedEachTime(t *testing.T) {
	f := newFixture(t, Config{})
	tx := f.t.Open(KindTx, 0)
	report := func() {
		e := &MisuseEvent{Kind: MisuseOpenRows, Query: "UPDATE t SET a = 1", HereGoroutine: 7, There: tx}
		e.Here.Capture(0) // the same line every time
		f.t.ReportMisuse(e)
	}
	for range 3 {
		report()
	}
	f.flush()
	if n := f.t.Stats().Misuse[MisuseOpenRows]; n != 3 {
		t.Errorf("counted %d; want 3", n)
	}
	lines := f.buf.lines()
	if len(lines) != 1 {
		t.Fatalf("got %d log lines; want 1", len(lines))
	}
	l := lines[0]
	if l["kind"] != MisuseOpenRows || l["query"] != "UPDATE t SET a = 1" || !strings.HasPrefix(l["msg"].(string), "sqlwatch: statement at ") {
		t.Errorf("line: %v", l)
	}
}

func TestDeathHint(t *testing.T) {
	f := newFixture(t, Config{})
	f.t.ConnDied(DeathIdle, 100*time.Millisecond) // too short to count
	f.t.ConnDied(DeathHeld, 28*time.Second)
	f.t.ConnDied(DeathIdle, 3*time.Second)
	f.t.ConnDied(DeathInTx, 30*time.Second)
	f.t.ConnDied(DeathIdle, 31*time.Second)
	f.t.ConnDied(DeathIdle, 29*time.Second) // after the hint: no second one
	f.flush()
	st := f.t.Stats().ConnDeaths
	if st[DeathIdle] != 4 || st[DeathHeld] != 1 || st[DeathInTx] != 1 {
		t.Errorf("deaths: %v", st)
	}
	lines := f.buf.lines()
	if len(lines) != 1 || lines[0]["kind"] != "conn_death_hint" || lines[0]["idle"] != "30s" ||
		!strings.Contains(lines[0]["msg"].(string), "SetConnMaxIdleTime") {
		t.Errorf("hint: %v", lines)
	}
}

// TestNoteReadsWritesBeforeTruncation: a long SELECT ... FOR UPDATE is a
// write even when the text kept is cut before FOR UPDATE.
func TestNoteReadsWritesBeforeTruncation(t *testing.T) {
	f := newFixture(t, Config{QueryLimit: 20})
	tx := f.t.Open(KindTx, 0)
	defer f.t.Close(tx)
	tx.Note("SELECT a, b, c, d, e, f FROM t WHERE id = 1 FOR UPDATE")
	if tx.flags.Load()&flagWrote == 0 {
		t.Error("a tx that ran SELECT ... FOR UPDATE is not marked as having written")
	}
}
