// Package e2eresult holds the results of the end-to-end benchmark
// (../../e2e), shared by the program that measures them and by the table
// that reports them (../../cmd/table).
package e2eresult

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// File is what the e2e program writes with -json.
type File struct {
	Rounds   int           `json:"rounds"`
	Duration time.Duration `json:"duration_ns"` // per round and variant
	Clients  int           `json:"clients"`
	MaxOther float64       `json:"max_other_cpu_pct"` // the disturbance limit of a clean round
	Results  []Result      `json:"results"`
	Skipped  []Skipped     `json:"skipped,omitempty"`
}

// Skipped is a database and driver that could not be measured.
type Skipped struct {
	Database string `json:"database"`
	Driver   string `json:"driver"`
	Reason   string `json:"reason"`
}

// Side is one variant's measurement, over the rounds used.
type Side struct {
	Ops     int64         `json:"ops"`
	Errors  int64         `json:"errors"`     // over all rounds, used or not
	Elapsed time.Duration `json:"elapsed_ns"` // summed over the rounds used
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
}

// Throughput is operations per second over the rounds used.
func (s Side) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

// Phase is one variant in one round.
type Phase struct {
	Ops      int64         `json:"ops"`
	Errors   int64         `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	OtherCPU float64       `json:"other_cpu_pct"` // CPU used by other work than this program and the database servers; -1 unknown
}

// Round is one round: each variant once.
type Round struct {
	Raw     Phase `json:"raw"`
	Wrapped Phase `json:"sqlwatch"`
	Used    bool  `json:"used"` // counted in the result: not disturbed, or too few rounds were clean
}

// Ratio is the round's throughput ratio.
func (r Round) Ratio() float64 {
	if r.Raw.Ops == 0 || r.Wrapped.Elapsed <= 0 {
		return 0
	}
	return (float64(r.Wrapped.Ops) / r.Wrapped.Elapsed.Seconds()) / (float64(r.Raw.Ops) / r.Raw.Elapsed.Seconds())
}

// Result is one database × driver × workload.
type Result struct {
	Database string `json:"database"` // "postgres", "mariadb" or "mysql"
	Server   string `json:"server"`   // the server's version string
	Driver   string `json:"driver"`   // "pq", "pgx" or "mysql"
	Workload string `json:"workload"` // "select" or "tx"
	Raw      Side   `json:"raw"`
	Wrapped  Side   `json:"sqlwatch"`
	// Rounds are every round measured; CleanRounds how many were not
	// disturbed by other work on the machine. When at least MinClean are
	// clean, only those are used; otherwise all are, and the result is
	// Noisy.
	Rounds      []Round `json:"rounds"`
	CleanRounds int     `json:"clean_rounds"`
	// RoundRatios are the throughput ratios (wrapped/raw) of the rounds
	// used, to show how much the ratio moves from round to round.
	RoundRatios []float64 `json:"round_ratios"`
	// Repeated lists the rounds measured again because of errors, with
	// the first error.
	Repeated []string `json:"repeated,omitempty"`
}

// MinClean is how many clean rounds a result needs to leave the disturbed
// ones out.
const MinClean = 3

// Noisy reports whether disturbed rounds had to be counted.
func (r Result) Noisy() bool { return r.CleanRounds < MinClean && r.CleanRounds < len(r.Rounds) }

// Name is "database/driver workload".
func (r Result) Name() string { return r.Database + "/" + r.Driver + " " + r.Workload }

// Ratio is the throughput ratio, sqlwatch over raw.
func (r Result) Ratio() float64 { return ratio(r.Wrapped.Throughput(), r.Raw.Throughput()) }

// RatioCI is a 95% confidence interval of the throughput ratio, from the
// per-round ratios (Student's t on their logarithms); ok is false with
// fewer than two rounds.
func (r Result) RatioCI() (lo, hi float64, ok bool) {
	n := len(r.RoundRatios)
	if n < 2 {
		return 0, 0, false
	}
	var sum, sq float64
	for _, x := range r.RoundRatios {
		if x <= 0 {
			return 0, 0, false
		}
		sum += math.Log(x)
	}
	mean := sum / float64(n)
	for _, x := range r.RoundRatios {
		d := math.Log(x) - mean
		sq += d * d
	}
	half := tQuantile975(n-1) * math.Sqrt(sq/float64(n-1)) / math.Sqrt(float64(n))
	return math.Exp(mean - half), math.Exp(mean + half), true
}

// tQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom.
func tQuantile975(df int) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df < len(table) {
		return table[df]
	}
	return 1.96
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Read reads a File written by the e2e program.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Write writes f as JSON.
func (f *File) Write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Print writes the e2e table.
func (f *File) Print(w io.Writer) {
	fmt.Fprintf(w, "End-to-end: %d concurrent clients, %d round(s) × %v per variant, raw and sqlwatch (everything on) interleaved\n",
		f.Clients, f.Rounds, f.Duration)
	fmt.Fprintf(w, "ratios are sqlwatch / raw, over the rounds used; \"rounds\" is the range of the per-round throughput\n")
	fmt.Fprintf(w, "ratios and \"95%% CI\" a confidence interval of the ratio from them; clean = rounds in which other work\n")
	fmt.Fprintf(w, "(not this program, not the database servers) used ≤ %g%% of the machine's CPU: only those are used when\n", f.MaxOther)
	fmt.Fprintf(w, "there are at least %d, else all rounds are, marked NOISY\n\n", MinClean)
	fmt.Fprintf(w, "%-26s %9s %9s %6s %13s %13s  %8s %8s %6s  %8s %8s %6s %6s %6s\n",
		"database/driver workload", "raw ops/s", "sw ops/s", "ratio", "rounds", "95% CI",
		"raw p50", "sw p50", "ratio", "raw p99", "sw p99", "ratio", "errors", "clean")
	for _, r := range f.Results {
		lo, hi := minMax(r.RoundRatios)
		ci := "—"
		if clo, chi, ok := r.RatioCI(); ok {
			ci = fmt.Sprintf("%.3f–%.3f", clo, chi)
		}
		mark := ""
		if r.Noisy() {
			mark = " NOISY"
		}
		fmt.Fprintf(w, "%-26s %9.0f %9.0f %6.3f %13s %13s  %8s %8s %6.3f  %8s %8s %6.3f %6d %6s%s\n",
			r.Name(), r.Raw.Throughput(), r.Wrapped.Throughput(), r.Ratio(), fmt.Sprintf("%.3f–%.3f", lo, hi), ci,
			fmtDur(r.Raw.P50), fmtDur(r.Wrapped.P50), ratio(float64(r.Wrapped.P50), float64(r.Raw.P50)),
			fmtDur(r.Raw.P99), fmtDur(r.Wrapped.P99), ratio(float64(r.Wrapped.P99), float64(r.Raw.P99)),
			r.Raw.Errors+r.Wrapped.Errors, fmt.Sprintf("%d/%d", r.CleanRounds, len(r.Rounds)), mark)
	}
	servers := map[string]bool{}
	for _, r := range f.Results {
		if !servers[r.Database+r.Server] {
			servers[r.Database+r.Server] = true
			fmt.Fprintf(w, "server %s: %s\n", r.Database, r.Server)
		}
	}
	for _, r := range f.Results {
		for _, rep := range r.Repeated {
			fmt.Fprintf(w, "repeated after errors: %s %s\n", r.Name(), rep)
		}
	}
	for _, s := range f.Skipped {
		fmt.Fprintf(w, "NOT MEASURED %s/%s: %s\n", s.Database, s.Driver, s.Reason)
	}
}

func minMax(xs []float64) (lo, hi float64) {
	for i, x := range xs {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}

// fmtDur prints a latency in µs with three significant digits.
func fmtDur(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	switch {
	case us >= 1000:
		return fmt.Sprintf("%.2fms", us/1000)
	case us >= 100:
		return fmt.Sprintf("%.0fµs", us)
	default:
		return fmt.Sprintf("%.1fµs", us)
	}
}
