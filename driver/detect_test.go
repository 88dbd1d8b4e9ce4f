package driver

import (
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/frames"
)

// TestTxIndex: a goroutine's txs are listed and unlisted whichever of
// them ends first, a tx begun at the mark of a listed one replaces it,
// and an index emptied of them holds nothing.
func TestTxIndex(t *testing.T) {
	var x txIndex
	marks := make([]frames.Mark, 3)
	for i := range marks {
		marks[i] = markAt(i)
	}
	if marks[0] == marks[1] || marks[1] == marks[2] {
		t.Fatal("three frames, one mark")
	}
	mk := func(m frames.Mark) *tx { return &tx{mark: m, at: 1} }
	a, b, d := mk(marks[0]), mk(marks[1]), mk(marks[2])
	other := mk(marks[0])
	const g, h = 7, 7 + 16 // one shard, two goroutines
	x.add(g, a)
	x.add(g, b)
	x.add(g, d)
	x.add(h, other) // another goroutine, the same mark: replaces nothing
	list := func(g int64) []*tx {
		var out []*tx
		for u := x.shards[g%16].m[g]; u != nil; u = u.older {
			out = append(out, u)
		}
		return out
	}
	if l := list(g); len(l) != 3 || l[0] != d || l[2] != a {
		t.Fatalf("goroutine's list %v; want d, b, a", l)
	}
	x.remove(g, b) // from the middle
	x.remove(g, b) // twice: nothing more happens
	if l := list(g); len(l) != 2 || l[0] != d || l[1] != a {
		t.Fatalf("after removing the middle one: %v", l)
	}
	again := mk(marks[0]) // the frame of a, called again
	x.add(g, again)
	if l := list(g); len(l) != 2 || l[0] != again || l[1] != d || a.listed {
		t.Fatalf("a tx begun at a listed tx's mark does not replace it: %v", l)
	}
	if n := x.open.Load(); n != 3 {
		t.Errorf("open = %d; want 3 (two of g's, one of h's)", n)
	}
	if l := list(h); len(l) != 1 || l[0] != other {
		t.Error("another goroutine of the same shard lost its tx")
	}
	x.remove(g, a) // replaced already: nothing happens
	x.remove(g, d)
	x.remove(g, again)
	x.remove(h, other)
	if n := x.open.Load(); n != 0 {
		t.Errorf("open = %d after removing every tx; want 0", n)
	}
	if n := len(x.shards[g%16].m); n != 0 {
		t.Errorf("the shard still maps %d goroutines", n)
	}
	for _, u := range []*tx{a, b, d, other, again} {
		if u.older != nil || u.listed {
			t.Error("a removed tx still links to another or is marked listed")
		}
	}
}

// markAt returns the mark of a frame i calls deep.
//
//go:noinline
func markAt(i int) frames.Mark {
	if i > 0 {
		return markAt(i - 1)
	}
	var w frames.Walk
	w.Capture()
	m, _ := w.MarkOf(0)
	return m
}
