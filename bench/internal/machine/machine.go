// Package machine tells how busy the rest of the machine was while a
// benchmark ran. Other work on a small, shared machine inflates
// wall-clock measurements; the benchmarks report this so that the report
// can leave disturbed samples out and say so. Linux only (/proc): elsewhere
// Sample returns a reading that is not OK and Other reports nothing.
package machine

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A Reading is the CPU time, in clock ticks, of the whole machine, of this
// process and of the processes excluded by name.
type Reading struct {
	busy, total, self uint64
	excluded          map[string]uint64 // by pid, of the processes excluded by name
	ok                bool
}

// Sample reads the CPU time used so far. Processes whose command name is
// in exclude (such as "postgres", the server a benchmark drives) count as
// part of the benchmark, not as other work.
func Sample(exclude ...string) Reading {
	var r Reading
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return r
	}
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return r
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return r
		}
	}
	// Interrupt time is left out: it is not attributed to any process,
	// and on the loopback most of it is the benchmark's own network
	// traffic (softirq).
	r.busy = v[0] + v[1] + v[2] + v[7]
	for _, x := range v {
		r.total += x
	}
	self, ok := procCPU("/proc/self/stat", nil)
	if !ok {
		return r
	}
	r.self = self
	if len(exclude) > 0 {
		r.excluded = map[string]uint64{}
		dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, d := range dirs {
			if t, ok := procCPU(d, exclude); ok {
				r.excluded[filepath.Base(filepath.Dir(d))] = t
			}
		}
	}
	r.ok = true
	return r
}

// procCPU returns utime+stime of the process whose stat file is path;
// with names, only when the process's command name is one of them.
func procCPU(path string, names []string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return 0, false
	}
	if names != nil && !slices.Contains(names, string(b[open+1:end])) {
		return 0, false
	}
	// After the command name: field 3 (state) on; utime and stime are
	// fields 14 and 15.
	rest := strings.Fields(string(b[end+1:]))
	if len(rest) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseUint(rest[11], 10, 64)
	st, err2 := strconv.ParseUint(rest[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ut + st, true
}

// Other returns the percentage of the machine's CPU time (all cores,
// hypervisor steal included, interrupt time not) between a and b that
// went to other work: neither this process nor the excluded ones. ok is
// false when either reading failed.
//
// An excluded process that started in between counts with all its CPU
// time; one that ended in between cannot be read, and its last share
// counts as other work (a server restarting is a disturbance anyway).
func Other(a, b Reading) (pct float64, ok bool) {
	if !a.ok || !b.ok || b.total <= a.total {
		return 0, false
	}
	var excluded uint64
	for pid, t := range b.excluded {
		if t0, ok := a.excluded[pid]; !ok {
			excluded += t
		} else if t0 <= t {
			excluded += t - t0
		}
	}
	other := float64(b.busy-a.busy) - float64(b.self-a.self) - float64(excluded)
	return min(100, max(0, 100*other/float64(b.total-a.total))), true
}
