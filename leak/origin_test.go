package leak_test

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/leak"
)

// From outside package leak, a report's origin is the caller's own line.
func TestOriginIsTheCallersLine(t *testing.T) {
	got := make(chan leak.Report, 2)
	tr, err := leak.NewTracker(leak.Config{
		DBName:     "origin",
		Thresholds: [5]time.Duration{leak.KindTx: time.Millisecond},
		Interval:   5 * time.Millisecond,
		Logger:     slog.New(slog.DiscardHandler),
		OnReport:   func(r leak.Report) { got <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	_, _, line, _ := runtime.Caller(0)
	r := tr.Open(leak.KindTx, 0) // line+1
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
func next(t *testing.T, got chan leak.Report) leak.Report {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no report within 5s")
		return leak.Report{}
	}
}

func openTx(tr *leak.Tracker) *leak.Resource { return tr.Open(leak.KindTx, 0) }

// bypassInside reports a bypass from the function that began tx.
func bypassInside(tr *leak.Tracker) *leak.Resource {
	tx := tr.Open(leak.KindTx, 0)
	e := &leak.MisuseEvent{Kind: leak.MisuseTxBypass, There: tx, ThereFuncLives: true}
	e.Here.Capture(0)
	tr.ReportMisuse(e)
	return tx
}

// TestBypassCountedOnlyWhenTheTxFunctionRuns: a goroutine whose tx was
// begun by a function that has returned (a leaked tx, a keep-alive HTTP
// goroutine's earlier request) is no bypasser, and is not counted.
func TestBypassCountedOnlyWhenTheTxFunctionRuns(t *testing.T) {
	tr, err := leak.NewTracker(leak.Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	old := openTx(tr) // openTx has returned
	e := &leak.MisuseEvent{Kind: leak.MisuseTxBypass, There: old, ThereFuncLives: true}
	e.Here.Capture(0)
	tr.ReportMisuse(e)
	live := bypassInside(tr)
	tr.Stop() // logs the queue
	if n := tr.Stats().Misuse[leak.MisuseTxBypass]; n != 1 {
		t.Errorf("tx_bypass counted %d; want 1 (the one inside the tx's function)", n)
	}
	tr.Close(old)
	tr.Close(live)
}
