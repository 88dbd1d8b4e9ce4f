package main

import (
	"math"
	"strings"
	"testing"
)

// benchOutput is go test -bench output of n invocations; each element is
// one invocation's lines for BenchmarkExec, as "variant ns other".
func benchOutput(runs ...[]string) string {
	var sb strings.Builder
	for _, run := range runs {
		sb.WriteString("goos: linux\ngoarch: amd64\npkg: x\ncpu: Test CPU\n")
		for _, l := range run {
			f := strings.Fields(l)
			sb.WriteString("BenchmarkExec/" + f[0] + "-2 \t 1000 \t " + f[1] + " ns/op \t " + f[2] + " other-cpu% \t 112 B/op \t 3 allocs/op\n")
		}
		sb.WriteString("PASS\n")
	}
	return sb.String()
}

func TestPairedDelta(t *testing.T) {
	f := func(out string, wantD, wantLo, wantHi float64, wantN int, wantNoisy bool) {
		t.Helper()
		samples, header, err := parse(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if len(header) != 3 {
			t.Fatalf("header %q; want goos, goarch and cpu once each", header)
		}
		micro := selectClean(samples, 10)
		d, lo, hi, n, noisy := pairedDelta(micro["Exec/raw"], micro["Exec/sqlwatch"], 10)
		if d != wantD || lo != wantLo || hi != wantHi || n != wantN || noisy != wantNoisy {
			t.Fatalf("got d=%v lo=%v hi=%v n=%d noisy=%v; want d=%v lo=%v hi=%v n=%d noisy=%v",
				d, lo, hi, n, noisy, wantD, wantLo, wantHi, wantN, wantNoisy)
		}
	}
	// Drift between runs: the differences within runs are 60, 50, 40
	// (median 50) while the medians differ by 240 - 200 = 40.
	f(benchOutput(
		[]string{"raw 100 0", "sqlwatch 160 0"},
		[]string{"raw 300 0", "sqlwatch 350 0"},
		[]string{"raw 200 0", "sqlwatch 240 0"},
	), 50, 40, 60, 3, false)
	// A disturbed pair is left out while 3 clean ones remain; an
	// invocation that measured only one side (an extra pass of old)
	// pairs with nothing.
	f(benchOutput(
		[]string{"raw 100 0", "sqlwatch 160 0"},
		[]string{"raw 300 0", "sqlwatch 900 50"},
		[]string{"raw 200 0", "sqlwatch 240 0"},
		[]string{"raw 250 0", "sqlwatch 300 1"},
		[]string{"raw 5 0"},
	), 50, 40, 60, 3, false)
	// One invocation that measured each side twice (-count 2): only its
	// first samples pair.
	f(benchOutput(
		[]string{"raw 100 0", "raw 500 0", "sqlwatch 160 0", "sqlwatch 900 0"},
		[]string{"raw 300 0", "sqlwatch 350 0"},
		[]string{"raw 200 0", "sqlwatch 240 0"},
	), 50, 40, 60, 3, false)
	// Too few clean pairs: all pairs, marked noisy. Even count: the mean
	// of the middle two.
	f(benchOutput(
		[]string{"raw 100 20", "sqlwatch 160 0"},
		[]string{"raw 300 0", "sqlwatch 310 50"},
	), 35, 10, 60, 2, true)

	// Nothing to pair.
	samples, _, err := parse(strings.NewReader(benchOutput([]string{"raw 100 0"}, []string{"sqlwatch 150 0"})))
	if err != nil {
		t.Fatal(err)
	}
	micro := selectClean(samples, 10)
	if d, _, _, n, _ := pairedDelta(micro["Exec/raw"], micro["Exec/sqlwatch"], 10); n != 0 || !math.IsNaN(d) {
		t.Fatalf("got d=%v n=%d for runs that measured one side each; want NaN and 0", d, n)
	}
	if d, _, _, n, _ := pairedDelta(nil, micro["Exec/sqlwatch"], 10); n != 0 || !math.IsNaN(d) {
		t.Fatalf("got d=%v n=%d without raw samples; want NaN and 0", d, n)
	}
}

func TestBudgetUsesPairedDelta(t *testing.T) {
	// The medians differ by +300 (over the +150 budget), most runs by
	// +100: the budget line is MET on the paired difference and shows
	// the difference of the medians beside it.
	out := benchOutput(
		[]string{"raw 100 0", "sqlwatch 200 0"},
		[]string{"raw 300 0", "sqlwatch 400 0"},
		[]string{"raw 200 0", "sqlwatch 300 0"},
		[]string{"raw 10 0", "sqlwatch 400 0"},
		[]string{"raw 20 0", "sqlwatch 410 0"},
	)
	samples, _, err := parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	c := checkBudgets(&sb, selectClean(samples, 10), 10, nil, nil)
	var line string
	for _, l := range strings.Split(sb.String(), "\n") {
		if strings.Contains(l, "ExecContext ") && strings.Contains(l, "sqlwatch − raw, time") {
			line = l
		}
	}
	if !strings.HasPrefix(line, "MET") || !strings.Contains(line, "+100 ns") || !strings.Contains(line, "Δ of the medians +300 ns") {
		t.Fatalf("budget line %q; want MET at +100 ns with the medians' difference +300 ns", line)
	}
	if c.met == 0 {
		t.Fatalf("counts %+v; want MET lines", c)
	}
}
