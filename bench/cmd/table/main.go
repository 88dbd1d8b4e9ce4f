// Command table turns the output of the micro-benchmarks (go test -bench,
// any number of runs concatenated) and the e2e program's JSON into one
// report: the micro-benchmark table (medians over the runs), the e2e
// table, and every budget with MET or MISSED.
//
//	go run ./cmd/table -micro micro.txt -e2e e2e.json [-max-other 10] [-strict]
//
// A micro-benchmark sample taken while other processes used more than
// -max-other percent of the machine's CPU (the "other-cpu%" metric the
// benchmarks report) is left out of the median, as long as at least 3
// clean samples remain; otherwise all samples are used and the row is
// flagged. With -strict it exits 1 when a budget is missed or not
// measured.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sqlwatch/sqlwatch/bench/internal/e2eresult"
)

// The variants and operations of micro_bench_test.go, in table order.
var (
	variants   = []string{"raw", "sqlmw", "sqlwatch", "sqlwatch-metrics", "otelsql"}
	operations = []struct{ bench, label string }{
		{"Exec", "ExecContext"},
		{"Query", "Query+Next+Close"},
		{"Tx", "BeginTx+Exec+Commit"},
		{"PrepareExec", "Prepare+Exec+Close"},
	}
)

// Budgets over raw, for sqlwatch with everything on.
var budgets = map[string]struct{ ns, allocs float64 }{
	"Exec":  {150, 2},
	"Query": {300, 3},
	"Tx":    {1500, 3},
}

// E2E throughput ratio budget, sqlwatch over raw.
const minRatio = 0.97

// minClean is how many clean samples a median needs.
const minClean = 3

type sample struct {
	ns, bytes, allocs float64
	other             float64 // other-cpu%; NaN when not reported
	run               int     // which invocation of the test binary took it (0, 1, ...)
}

// clean reports whether s was taken while other processes used at most
// maxOther % of the machine's CPU (or the benchmark did not say).
func (s sample) clean(maxOther float64) bool { return math.IsNaN(s.other) || s.other <= maxOther }

// bench is one benchmark's samples.
type bench struct {
	all   []sample
	used  []sample // the clean ones, or all when too few are clean
	clean int
}

func (b *bench) measured() bool { return b != nil && len(b.used) > 0 }

// noisy reports whether the median had to include disturbed samples.
func (b *bench) noisy() bool { return b != nil && b.clean < minClean && len(b.all) > b.clean }

func (b *bench) median(f func(sample) float64) float64 {
	if !b.measured() {
		return math.NaN()
	}
	xs := make([]float64, len(b.used))
	for i, v := range b.used {
		xs[i] = f(v)
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// spread is the range of f over the samples used.
func (b *bench) spread(f func(sample) float64) (lo, hi float64) {
	if !b.measured() {
		return math.NaN(), math.NaN()
	}
	for i, v := range b.used {
		x := f(v)
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}

// pairedDelta is the difference sqlwatch − raw in ns/op: the median,
// over the invocations of the test binary that measured both, of the
// difference within one invocation, where the two ran seconds apart.
// Pairing takes the machine's drift out, which the difference of the two
// medians keeps: on a shared host a run's values all move together by
// tens of per cent, while the difference within a run moves much less.
// Pairs in which both samples are clean are used when there are at least
// minClean of them, all pairs otherwise (noisy is then true). lo and hi
// are the smallest and largest difference among the pairs used; n is how
// many were used. With no pair, d is NaN.
func pairedDelta(raw, sw *bench, maxOther float64) (d, lo, hi float64, n int, noisy bool) {
	if raw == nil || sw == nil {
		return math.NaN(), math.NaN(), math.NaN(), 0, false
	}
	first := map[int]sample{}
	for _, s := range raw.all {
		if _, ok := first[s.run]; !ok {
			first[s.run] = s
		}
	}
	var all, cleanDiffs []float64
	seen := map[int]bool{}
	for _, s := range sw.all {
		r, ok := first[s.run]
		if !ok || seen[s.run] {
			continue
		}
		seen[s.run] = true
		all = append(all, s.ns-r.ns)
		if s.clean(maxOther) && r.clean(maxOther) {
			cleanDiffs = append(cleanDiffs, s.ns-r.ns)
		}
	}
	used := cleanDiffs
	if len(used) < minClean {
		used, noisy = all, len(all) > len(cleanDiffs)
	}
	if len(used) == 0 {
		return math.NaN(), math.NaN(), math.NaN(), 0, noisy
	}
	slices.Sort(used)
	n = len(used)
	d = used[n/2]
	if n%2 == 0 {
		d = (used[n/2-1] + used[n/2]) / 2
	}
	return d, used[0], used[n-1], n, noisy
}

func ns(s sample) float64     { return s.ns }
func allocs(s sample) float64 { return s.allocs }

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse reads go test -bench output: samples by "Op/variant" (the
// GOMAXPROCS suffix removed), and the header lines (goos, cpu, ...).
// Each invocation of the test binary prints a "goos:" line first; the
// samples after the k-th such line have run k-1, so that samples taken
// by one invocation can be paired (see [pairedDelta]).
func parse(r io.Reader) (map[string][]sample, []string, error) {
	res := map[string][]sample{}
	var header []string
	seen := map[string]bool{}
	run := -1
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "goos:") {
			run++
		}
		for _, h := range []string{"goos:", "goarch:", "cpu:"} {
			if strings.HasPrefix(line, h) && !seen[line] {
				seen[line] = true
				header = append(header, strings.TrimSpace(line))
			}
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		s := sample{ns: math.NaN(), bytes: math.NaN(), allocs: math.NaN(), other: math.NaN(), run: max(run, 0)}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = v
			case "B/op":
				s.bytes = v
			case "allocs/op":
				s.allocs = v
			case "other-cpu%":
				s.other = v
			}
		}
		if !math.IsNaN(s.ns) {
			res[name] = append(res[name], s)
		}
	}
	return res, header, sc.Err()
}

// select keeps the samples taken while the rest of the machine was quiet.
func selectClean(samples map[string][]sample, maxOther float64) map[string]*bench {
	out := map[string]*bench{}
	for name, all := range samples {
		b := &bench{all: all}
		for _, s := range all {
			if s.clean(maxOther) {
				b.used = append(b.used, s)
			}
		}
		b.clean = len(b.used)
		if b.clean < minClean {
			b.used = all
		}
		out[name] = b
	}
	return out
}

func main() {
	microPath := flag.String("micro", "", "go test -bench output (several runs may be concatenated)")
	e2ePath := flag.String("e2e", "", "JSON written by the e2e program (-json)")
	maxOther := flag.Float64("max-other", 10, "leave out micro samples taken while other processes used more than this % of the machine's CPU")
	strict := flag.Bool("strict", false, "exit 1 when a budget is missed or not measured")
	listNoisy := flag.Bool("list-noisy", false, "only list the micro-benchmarks (Benchmark<Op>/<variant>) with fewer than 3 clean runs, one a line, for run.sh to run again")
	flag.Parse()

	var micro map[string]*bench
	if *microPath != "" {
		f, err := os.Open(*microPath)
		if err != nil {
			fatal(err)
		}
		samples, header, err := parse(f)
		f.Close()
		if err != nil {
			fatal(err)
		}
		micro = selectClean(samples, *maxOther)
		if *listNoisy {
			var noisy []string
			for name, b := range micro {
				if b.noisy() {
					noisy = append(noisy, "Benchmark"+name)
				}
			}
			slices.Sort(noisy)
			for _, n := range noisy {
				fmt.Println(n)
			}
			return
		}
		printMicro(os.Stdout, micro, header, *maxOther)
	}
	var (
		e2e    *e2eresult.File
		e2eErr error
	)
	if *e2ePath != "" {
		fmt.Println()
		fmt.Println("== End-to-end (loopback databases)")
		fmt.Println()
		if e2e, e2eErr = e2eresult.Read(*e2ePath); e2eErr != nil {
			fmt.Printf("no results: %v\n", e2eErr)
		} else {
			e2e.Print(os.Stdout)
		}
	}
	fmt.Println()
	c := checkBudgets(os.Stdout, micro, *maxOther, e2e, e2eErr)
	fmt.Printf("\nbudgets: %d MET, %d MISSED, %d NOT MEASURED\n", c.met, c.missed, c.unmeasured)
	if *strict && c.missed+c.unmeasured > 0 {
		os.Exit(1)
	}
}

func printMicro(w io.Writer, micro map[string]*bench, header []string, maxOther float64) {
	runs := 0
	for _, b := range micro {
		runs = max(runs, len(b.all))
	}
	fmt.Fprintln(w, "== Micro-benchmarks (in-memory fake driver: the wrappers' own cost)")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s; %d runs per benchmark\n", strings.Join(header, ", "), runs)
	fmt.Fprintf(w, "ns/op per variant: the median of the clean runs (other processes used ≤ %g%% of the machine's CPU);\n", maxOther)
	fmt.Fprintf(w, "clean = fewest clean runs of the row's variants (< %d: all runs used, row marked NOISY);\n", minClean)
	fmt.Fprintln(w, "Δ = sqlwatch − raw: the median over the runs of the difference within one run (paired);")
	fmt.Fprintln(w, "allocs/op as raw/sqlmw/sqlwatch/sqlwatch-metrics/otelsql;")
	fmt.Fprintln(w, "spread = the largest (max−min)/median among the row's variants over the runs used;")
	fmt.Fprintln(w, "parallel rows: b.RunParallel on GOMAXPROCS goroutines, ns/op is wall time per operation")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-30s %8s %8s %8s %8s %8s %10s  %-19s %8s %7s %6s\n",
		"operation", "raw", "sqlmw", "sqlwatch", "sw-metr.", "otelsql", "Δ ns", "allocs/op", "Δ allocs", "spread", "clean")
	for _, parallel := range []bool{false, true} {
		for _, op := range operations {
			name, label := names(op.bench, op.label, parallel)
			fmt.Fprintf(w, "%-30s", label)
			var allocsCol []string
			spread := 0.0
			var worst *bench // the variant with the fewest clean runs
			noisy := false
			for _, v := range variants {
				b := micro[name+"/"+v]
				fmt.Fprintf(w, " %8s", fmtNS(b.median(ns)))
				allocsCol = append(allocsCol, fmtNum(b.median(allocs)))
				if b.measured() {
					lo, hi := b.spread(ns)
					spread = max(spread, (hi-lo)/b.median(ns))
					if worst == nil || b.clean < worst.clean {
						worst = b
					}
					noisy = noisy || b.noisy()
				}
			}
			raw, sw := micro[name+"/raw"], micro[name+"/sqlwatch"]
			cleanCol, mark := "—", ""
			if worst != nil {
				cleanCol = fmt.Sprintf("%d/%d", worst.clean, len(worst.all))
			}
			d, _, _, _, pairNoisy := pairedDelta(raw, sw, maxOther)
			if noisy || pairNoisy {
				mark = " NOISY"
			}
			fmt.Fprintf(w, " %10s  %-19s %8s %6.1f%% %6s%s\n",
				fmtDelta(d, " ns"), strings.Join(allocsCol, "/"),
				fmtDelta(sw.median(allocs)-raw.median(allocs), ""), 100*spread, cleanCol, mark)
		}
	}
}

func names(benchName, label string, parallel bool) (string, string) {
	if parallel {
		return benchName + "Parallel", label + " (parallel)"
	}
	return benchName, label
}

type counts struct{ met, missed, unmeasured int }

func checkBudgets(w io.Writer, micro map[string]*bench, maxOther float64, e2e *e2eresult.File, e2eErr error) counts {
	var c counts
	line := func(what, check, limit, got string, ok bool, note string) {
		verdict := "MET"
		if !ok {
			verdict = "MISSED"
			c.missed++
		} else {
			c.met++
		}
		if note != "" {
			note = "  " + note
		}
		fmt.Fprintf(w, "%-12s %-31s %-27s %-15s %s%s\n", verdict, what, check, limit, got, note)
	}
	unmeasured := func(what, check, limit, why string) {
		c.unmeasured++
		fmt.Fprintf(w, "%-12s %-31s %-27s %-15s %s\n", "NOT MEASURED", what, check, limit, why)
	}
	noisyNote := func(bs ...*bench) string {
		for _, b := range bs {
			if b.noisy() {
				return fmt.Sprintf("(NOISY: machine busy, only %d/%d clean runs)", b.clean, len(b.all))
			}
		}
		return ""
	}
	join := func(notes ...string) string {
		var out []string
		for _, n := range notes {
			if n != "" {
				out = append(out, n)
			}
		}
		return strings.Join(out, " ")
	}

	fmt.Fprintln(w, "== Budgets (sqlwatch = everything on; micro: medians, the differences paired by run; serial and parallel both checked)")
	fmt.Fprintln(w)
	if micro != nil {
		for _, parallel := range []bool{false, true} {
			for _, op := range operations {
				name, label := names(op.bench, op.label, parallel)
				raw, sw, ot := micro[name+"/raw"], micro[name+"/sqlwatch"], micro[name+"/otelsql"]
				if b, ok := budgets[op.bench]; ok {
					// The paired difference (see pairedDelta); the
					// difference of the medians is shown beside it.
					d, lo, hi, n, pairNoisy := pairedDelta(raw, sw, maxOther)
					if n == 0 {
						unmeasured(label, "sqlwatch − raw", "", "no run measured both raw and sqlwatch")
					} else {
						// How far the difference could plausibly move:
						// half the range of the runs' differences.
						unc := (hi - lo) / 2
						near := ""
						if math.Abs(d-b.ns) <= unc {
							near = fmt.Sprintf("(close: within run-to-run spread ±%.0f ns)", unc)
						}
						noisy := noisyNote(raw, sw)
						if pairNoisy && noisy == "" {
							noisy = "(NOISY: machine busy, too few clean pairs)"
						}
						unpaired := fmt.Sprintf("(%d runs; Δ of the medians %s)", n, fmtDelta(sw.median(ns)-raw.median(ns), " ns"))
						line(label, "sqlwatch − raw, time", "≤ +"+fmtNS(b.ns)+" ns", fmtDelta(d, " ns"), d <= b.ns, join(unpaired, near, noisy))
						da := sw.median(allocs) - raw.median(allocs)
						line(label, "sqlwatch − raw, allocs", "≤ +"+fmtNum(b.allocs)+" allocs", fmtDelta(da, " allocs"), da <= b.allocs, "")
					}
				}
				if !ot.measured() || !sw.measured() {
					unmeasured(label, "sqlwatch ≤ otelsql", "", "no benchmark results")
					continue
				}
				s, o := sw.median(ns), ot.median(ns)
				line(label, "sqlwatch ≤ otelsql, time", "≤ otelsql", fmt.Sprintf("%s ns vs %s ns (%+.0f%%)", fmtNS(s), fmtNS(o), 100*(s/o-1)), s <= o, noisyNote(sw, ot))
				sa, oa := sw.median(allocs), ot.median(allocs)
				line(label, "sqlwatch ≤ otelsql, allocs", "≤ otelsql", fmt.Sprintf("%s vs %s allocs", fmtNum(sa), fmtNum(oa)), sa <= oa, "")
			}
		}
	}
	limit := fmt.Sprintf("≥ %.2f", minRatio)
	if e2eErr != nil {
		unmeasured("e2e", "throughput ratio", limit, e2eErr.Error())
	}
	if e2e != nil {
		for _, r := range e2e.Results {
			got := fmt.Sprintf("%.3f", r.Ratio())
			if lo, hi, ok := r.RatioCI(); ok {
				got += fmt.Sprintf(" (95%% CI %.3f–%.3f)", lo, hi)
			}
			if n := r.Raw.Errors + r.Wrapped.Errors; n > 0 {
				line("e2e "+r.Name(), "throughput ratio", limit, got, false,
					fmt.Sprintf("(errors during the measurement: raw %d, sqlwatch %d)", r.Raw.Errors, r.Wrapped.Errors))
				continue
			}
			var notes []string
			if lo, hi, ok := r.RatioCI(); ok && lo < minRatio && hi >= minRatio {
				notes = append(notes, "(not conclusive: the CI contains the limit)")
			}
			if r.Noisy() {
				notes = append(notes, fmt.Sprintf("(NOISY: machine busy, only %d/%d clean rounds)", r.CleanRounds, len(r.Rounds)))
			}
			if n := len(r.Repeated); n > 0 {
				notes = append(notes, fmt.Sprintf("(%d round(s) repeated after errors)", n))
			}
			line("e2e "+r.Name(), "throughput ratio", limit, got, r.Ratio() >= minRatio, join(notes...))
		}
		for _, s := range e2e.Skipped {
			unmeasured("e2e "+s.Database+"/"+s.Driver, "throughput ratio", limit, s.Reason)
		}
	}
	return c
}

func fmtNS(x float64) string {
	switch {
	case math.IsNaN(x):
		return "—"
	case math.Abs(x) < 100:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
}

func fmtNum(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

func fmtDelta(x float64, unit string) string {
	if math.IsNaN(x) {
		return "—"
	}
	var s string
	if unit == " ns" {
		s = fmtNS(x)
	} else {
		s = fmtNum(x)
	}
	if x >= 0 {
		s = "+" + s
	}
	return s + unit
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "table:", err)
	os.Exit(1)
}
