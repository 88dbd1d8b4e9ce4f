package leak_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// From outside package leak, a report's origin is the caller's own line.
func TestOriginIsTheCallersLine(t *testing.T) {
	got := make(chan track.Report, 2)
	tr, err := track.NewTracker(track.Config{
		DBName:     "origin",
		Thresholds: [5]time.Duration{track.KindTx: time.Millisecond},
		Interval:   5 * time.Millisecond,
		Logger:     slog.New(slog.DiscardHandler),
		OnReport:   func(r track.Report) { got <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	_, _, line, _ := runtime.Caller(0)
	r := tr.Open(track.KindTx, 0) // line+1
	want := fmt.Sprintf("leak/origin_test.go:%d", line+1)
	rep := next(t, got)
	if rep.Origin != want || rep.Func != "github.com/sqlwatch/sqlwatch/leak_test.TestOriginIsTheCallersLine" {
		t.Errorf("got %s in %s; want %s in TestOriginIsTheCallersLine", rep.Origin, rep.Func, want)
	}
	if len(rep.Stack) == 0 || rep.Stack[0].Function != rep.Func {
		t.Errorf("stack should start at the origin: %v", rep.Stack)
	}
	tr.Close(r)
	if rel := next(t, got); !rel.Released || rel.Origin != want {
		t.Errorf("release: got %+v", rel)
	}
}

// next returns the next report, or fails the test after 5s.
func next(t *testing.T, got chan track.Report) track.Report {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no report within 5s")
		return track.Report{}
	}
}

func openTx(tr *track.Tracker) *track.Resource { return tr.Open(track.KindTx, 0) }

// TestMisuseRepeatCountedNotQueued: a misuse the driver marks as a
// repeat of one already reported is counted in Stats().Misuse but never
// queued: with the queue full, repeats drop nothing, and only the first
// is logged.
func TestMisuseRepeatCountedNotQueued(t *testing.T) {
	var buf bytes.Buffer // written by the watchdog, read after Stop has ended it
	tr, err := track.NewTracker(track.Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tx := openTx(tr)
	first := &track.MisuseEvent{Kind: track.MisuseTxBypass, Query: "SELECT 1", There: tx}
	first.Here.Capture(0)
	tr.ReportMisuse(first)
	for range 10 * 1024 { // ten queues' worth
		tr.ReportMisuse(&track.MisuseEvent{Kind: track.MisuseTxBypass, Query: "SELECT 1", There: tx, Repeat: true})
	}
	tr.Stop() // logs the queue
	st := tr.Stats()
	if n := st.Misuse[track.MisuseTxBypass]; n != 1+10*1024 {
		t.Errorf("tx_bypass counted %d; want %d (each repeat counted)", n, 1+10*1024)
	}
	if st.Dropped != 0 {
		t.Errorf("Dropped = %d; repeats must not fill the queue", st.Dropped)
	}
	if n := strings.Count(buf.String(), `"kind":"tx_bypass"`); n != 1 {
		t.Errorf("%d tx_bypass lines logged; want 1:\n%s", n, buf.String())
	}
	tr.Close(tx)
}
