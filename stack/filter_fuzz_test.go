package stack_test

import (
	"strings"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/stack"
)

// fuzzFrames reads a frame list: one frame a line, "function<TAB>file:line"
// (the fixture format of testdata/stacks), where any part may be missing.
func fuzzFrames(s string) []stack.Frame {
	if s == "" {
		return nil
	}
	var frames []stack.Frame
	for _, line := range strings.Split(s, "\n") {
		fn, loc, _ := strings.Cut(line, "\t")
		file, ln, _ := strings.Cut(loc, ":")
		n := 0
		for _, c := range ln {
			if c < '0' || c > '9' || n > 1e6 {
				break
			}
			n = n*10 + int(c-'0')
		}
		frames = append(frames, stack.Frame{Function: fn, File: file, Line: n})
	}
	return frames
}

// FuzzFilter runs random frame lists and prefixes through Filter.Split and
// Filter.IsLibrary: no panic, the origin is one of the frames and the
// first of app, app is exactly the frames that are not library frames (a
// subsequence, in order), and IsLibrary depends on the function name only,
// agrees with the default filter for the default prefixes, honours a
// vendor directory, and covers each extra prefix.
func FuzzFilter(f *testing.F) {
	f.Add("database/sql.(*DB).BeginTx\t/usr/local/go/src/database/sql/sql.go:1873\nexample.com/shop/orders.(*Service).Place\t/src/orders.go:29\nmain.main\t/src/main.go:47", "example.com/shop/internal/db")
	f.Add("", "")
	f.Add("\n\t\n", "/,//")
	f.Fuzz(func(t *testing.T, list, extra string) {
		frames := fuzzFrames(list)
		prefixes := strings.Split(extra, ",")
		filters := []*callstack.Filter{nil, callstack.NewFilter(), callstack.NewFilter(prefixes...)}
		for fi, fl := range filters {
			before := append([]stack.Frame(nil), frames...)
			origin, app, ok := fl.Split(frames)
			for i := range frames {
				if frames[i] != before[i] {
					t.Fatalf("filter %d: Split modified its input at %d", fi, i)
				}
			}
			// app is the frames that are not library frames, in order.
			var want []stack.Frame
			for _, fr := range frames {
				if fr.Function != "" && !fl.IsLibrary(fr) {
					want = append(want, fr)
				}
			}
			if len(app) != len(want) {
				t.Fatalf("filter %d: app has %d frames; %d are not library frames", fi, len(app), len(want))
			}
			for i := range want {
				if app[i] != want[i] {
					t.Fatalf("filter %d: app[%d] = %v; want %v", fi, i, app[i], want[i])
				}
			}
			if !ok {
				if len(want) != 0 || app != nil || origin != (stack.Frame{}) {
					t.Fatalf("filter %d: ok=false with origin %v, app %v", fi, origin, app)
				}
				continue
			}
			if origin != app[0] {
				t.Fatalf("filter %d: origin %v is not app[0] %v", fi, origin, app[0])
			}
			found := false
			for _, fr := range frames {
				if fr == origin {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("filter %d: origin %v is not one of the frames", fi, origin)
			}
		}

		custom := filters[2]
		for _, fr := range frames {
			bare := stack.Frame{Function: fr.Function}
			def := callstack.NewFilter().IsLibrary(fr)
			if (*callstack.Filter)(nil).IsLibrary(fr) != def {
				t.Fatalf("nil filter and NewFilter() disagree on %q", fr.Function)
			}
			if custom.IsLibrary(fr) != custom.IsLibrary(bare) {
				t.Fatalf("IsLibrary(%v) depends on more than the function name", fr)
			}
			if def && !custom.IsLibrary(fr) {
				t.Fatalf("%q: a default library frame, but not with extra prefixes %q", fr.Function, prefixes)
			}
			vendored := stack.Frame{Function: "example.com/app/vendor/" + fr.Function}
			if custom.IsLibrary(vendored) != custom.IsLibrary(bare) {
				t.Fatalf("vendored %q: IsLibrary %v; unvendored %v", vendored.Function, custom.IsLibrary(vendored), custom.IsLibrary(bare))
			}
		}
		for _, p := range prefixes {
			p = strings.TrimRight(p, "/")
			if p == "" || strings.Contains(p, "vendor/") {
				continue
			}
			if fr := (stack.Frame{Function: p + ".F"}); !custom.IsLibrary(fr) {
				t.Fatalf("extra prefix %q does not cover %q", p, fr.Function)
			}
		}
	})
}
