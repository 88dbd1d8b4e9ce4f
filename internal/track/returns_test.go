package track

import (
	"log/slog"
	"testing"
	"time"
)

// TestUnseenConns: while a pool's returns are hidden (its conns opened by
// a wrapper, no IsValid seen), a conn checkout that no tx or rows holds
// may be idle in the pool: it is left out of the counts, the page's
// snapshot, the pool alert's holders and the gate; one a tx holds stays.
// A return seen brings both back.
func TestUnseenConns(t *testing.T) {
	tr, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	before := map[ID]struct{}{}
	idle := tr.Open(KindConn, 0)
	held := tr.Open(KindConn, 0)
	tx := tr.OpenLike(KindTx, Opening{Holder: held}, 0)
	defer func() { tr.Close(tx); tr.Close(held); tr.Close(idle) }()
	m, err := newMonitor(tr, MonitorConfig{})
	if err != nil {
		t.Fatal(err)
	}

	check := func(when string, conns, snapshot, uncovered int) {
		t.Helper()
		if n := tr.OpenCount(KindConn); n != conns {
			t.Errorf("%s: OpenCount(conn) %d; want %d", when, n, conns)
		}
		if n, _ := tr.Oldest(KindConn); n != conns {
			t.Errorf("%s: Oldest(conn) counts %d; want %d", when, n, conns)
		}
		if n := len(m.holders()); n != conns {
			t.Errorf("%s: %d holders; want %d", when, n, conns)
		}
		if n := len(tr.Snapshot()); n != snapshot {
			t.Errorf("%s: snapshot of %d; want %d", when, n, snapshot)
		}
		if n := len(tr.Uncovered(before)); n != uncovered {
			t.Errorf("%s: gate sees %d; want %d", when, n, uncovered)
		}
	}
	check("direct pool", 2, 3, 2) // the gate: the idle conn and the tx
	tr.NoteWrapperOpen("example.com/wrapper.(*connector).Connect")
	check("returns hidden", 1, 2, 1)
	tr.NoteReturn()
	check("a return seen", 2, 3, 2)
}
