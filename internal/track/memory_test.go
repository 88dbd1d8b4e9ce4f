package track

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

// heapInuse is the heap in use after two collections.
func heapInuse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// bigStatement is a new statement of n bytes, not shared with any other.
func bigStatement(n int) string {
	return "UPDATE t SET a = '" + strings.Repeat("x", n) + "' WHERE id = 1"
}

// TestCutTextDoesNotPinStatement: 20 open txs whose last statement is
// 10 MB (and 20 rows opened by one) keep the cut text, not the statement:
// the heap grows by well under 2 MB, where it grew by 10 MB a resource.
func TestCutTextDoesNotPinStatement(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 400 MB in passing")
	}
	const n, size, bound = 20, 10 << 20, 2 << 20
	f := newFixture(t, Config{})
	var open []*Resource
	before := heapInuse()
	for range n {
		r := f.t.Open(KindTx, 0)
		r.Note(bigStatement(size))
		open = append(open, r)
	}
	for range n {
		open = append(open, f.t.OpenLike(KindRows, Opening{Query: bigStatement(size)}, 0))
	}
	grew := heapInuse() - before
	t.Logf("%d open resources, each with a %d MB last statement: heap +%d KB", len(open), size>>20, grew>>10)
	if grew > bound {
		t.Errorf("the heap grew by %d MB with %d resources open; want < %d MB", grew>>20, len(open), bound>>20)
	}
	_, q := open[0].statementInfo()
	if want := bigStatement(size)[:DefaultQueryLimit] + "…"; q != want {
		t.Errorf("the last query is %.40q...; want the statement's first %d bytes", q, DefaultQueryLimit)
	}
	for _, r := range open {
		f.t.Close(r)
	}
}

// blockingHandler is a slog.Handler whose Handle waits for release: the
// watchdog stops in its first log line, and misuse reports queue.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *blockingHandler) Handle(context.Context, slog.Record) error {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
	return nil
}
func (h *blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *blockingHandler) WithGroup(string) slog.Handler      { return h }

// TestMisuseQueueKeepsCutText: 1000 misuses of 256 KB statements queued
// behind a blocked logger keep their text cut to QueryLimit: the heap
// grows by a few MB, where it grew by 256 MB.
func TestMisuseQueueKeepsCutText(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 256 MB in passing")
	}
	const n, size, bound = 1000, 256 << 10, 4 << 20
	h := &blockingHandler{entered: make(chan struct{}, 1), release: make(chan struct{})}
	tr, err := NewTracker(Config{DBName: "queue", Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	defer close(h.release)
	tx := tr.Open(KindTx, 0)
	defer tr.Close(tx)
	report := func(q string) {
		e := &MisuseEvent{Kind: MisuseOpenRows, Query: q, HereGoroutine: 7, There: tx}
		e.Here.Capture(0)
		tr.ReportMisuse(e)
	}
	report("SELECT 1")
	<-h.entered // the watchdog is stuck in its log line
	before := heapInuse()
	for range n {
		report(bigStatement(size))
	}
	grew := heapInuse() - before
	t.Logf("%d queued misuses of %d KB statements: heap +%d KB, queue %d", n, size>>10, grew>>10, len(tr.misuses))
	if len(tr.misuses) != n {
		t.Fatalf("%d misuses queued; want %d", len(tr.misuses), n)
	}
	if grew > bound {
		t.Errorf("the heap grew by %d MB with %d misuses queued; want < %d MB", grew>>20, n, bound>>20)
	}
	it := <-tr.misuses
	if want := bigStatement(size)[:DefaultQueryLimit] + "…"; it.ev.Query != want {
		t.Errorf("queued query %.40q...; want the statement's first %d bytes and …", it.ev.Query, DefaultQueryLimit)
	}
	if got := tr.sqlText(it.ev.Query); got != it.ev.Query {
		t.Errorf("sqlText of a queued text: got %.40q; want it unchanged", got)
	}
}
