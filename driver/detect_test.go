package driver

import (
	"context"
	"testing"

	"github.com/sqlwatch/sqlwatch/leak"
)

// TestTxIndex: a goroutine's open txs are found oldest first (skipping
// those on the asking conn and those whose context ended), whichever of
// them ends first, and an index emptied of them holds nothing.
func TestTxIndex(t *testing.T) {
	var x txIndex
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	c1, c2, c3 := &conn{}, &conn{}, &conn{}
	mk := func(c *conn, begin context.Context) *tx {
		return &tx{c: c, begin: begin, res: new(leak.Resource)}
	}
	bg := context.Background()
	a, b, d := mk(c1, bg), mk(c2, bg), mk(c3, bg)
	other := mk(c3, bg)
	const g, h = 7, 7 + 16 // one shard, two goroutines
	x.add(g, a)
	x.add(g, b)
	x.add(g, d)
	x.add(h, other)
	found := func(g int64, c *conn) *leak.Resource {
		var r *leak.Resource
		x.with(g, c, func(res *leak.Resource) { r = res })
		return r
	}
	if r := found(g, &conn{}); r != a.res {
		t.Error("not the oldest tx of the goroutine")
	}
	if r := found(g, c1); r != b.res {
		t.Error("the asking conn's own tx was not skipped")
	}
	x.remove(g, b) // from the middle
	if r := found(g, c1); r != d.res {
		t.Error("after removing the middle tx: not the next oldest")
	}
	x.remove(g, a) // the oldest
	x.remove(g, a) // twice: nothing more happens
	if n := x.open.Load(); n != 2 {
		t.Errorf("open = %d after removing two of four (one twice); want 2", n)
	}
	if r := found(g, &conn{}); r != d.res {
		t.Error("after removing the oldest: not the one left")
	}
	d.begin = ended
	if r := found(g, &conn{}); r != nil {
		t.Error("a tx whose context ended was found")
	}
	if r := found(h, &conn{}); r != other.res {
		t.Error("another goroutine of the same shard lost its tx")
	}
	x.remove(g, d)
	x.remove(h, other)
	if n := x.open.Load(); n != 0 {
		t.Errorf("open = %d after removing every tx; want 0", n)
	}
	if n := len(x.shards[g%16].m); n != 0 {
		t.Errorf("the shard still maps %d goroutines", n)
	}
	for _, u := range []*tx{a, b, d, other} {
		if u.older != nil {
			t.Error("a removed tx still links to another")
		}
	}
}
