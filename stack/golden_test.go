package stack_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/stack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/stacks")

// stacksDir holds the golden fixtures. Each NAME.txt is a symbolized stack,
// innermost frame first, one frame a line as "function<TAB>file:line".
// Blank lines and lines starting with "#" are ignored, except that
// "# extra: PREFIX..." adds prefixes to the filter. NAME.golden holds what
// Filter.Split makes of it: a line "origin: LOCATION" ("origin: none" when
// there is no application frame), then the application stack, one frame a
// line in the fixture's format.
const stacksDir = "../testdata/stacks"

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(stacksDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures in %s", stacksDir)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			frames, extra := readFixture(t, file)
			origin, app, ok := callstack.NewFilter(extra...).Split(frames)
			if ok && (len(app) == 0 || app[0] != origin) {
				t.Errorf("origin %v is not the first frame of app %v", origin, app)
			}
			got := formatGolden(origin, app, ok)

			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./stack -run TestGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s disagrees with %s (run with -update if the change is intended):\ngot:\n%s\nwant:\n%s",
					filepath.Base(file), filepath.Base(golden), got, want)
			}
		})
	}
}

// readFixture parses a NAME.txt fixture into frames and extra prefixes.
func readFixture(t testing.TB, file string) (frames []stack.Frame, extra []string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \r")
		if rest, found := strings.CutPrefix(line, "# extra:"); found {
			extra = append(extra, strings.Fields(rest)...)
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fr, err := parseFrame(line)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, n, err)
		}
		frames = append(frames, fr)
	}
	if len(frames) == 0 {
		t.Fatalf("%s: no frames", file)
	}
	return frames, extra
}

// parseFrame parses "function<TAB>file:line".
func parseFrame(line string) (stack.Frame, error) {
	fn, loc, found := strings.Cut(line, "\t")
	if !found || fn == "" {
		return stack.Frame{}, fmt.Errorf("got %q; want function<TAB>file:line", line)
	}
	i := strings.LastIndexByte(loc, ':')
	if i < 0 {
		return stack.Frame{}, fmt.Errorf("got location %q; want file:line", loc)
	}
	n, err := strconv.Atoi(loc[i+1:])
	if err != nil {
		return stack.Frame{}, fmt.Errorf("bad line number in %q: %v", loc, err)
	}
	return stack.Frame{Function: fn, File: loc[:i], Line: n}, nil
}

// formatGolden renders the result of Split in the golden format.
func formatGolden(origin stack.Frame, app []stack.Frame, ok bool) string {
	var b strings.Builder
	if ok {
		fmt.Fprintf(&b, "origin: %s\n", origin.Location())
	} else {
		b.WriteString("origin: none\n")
	}
	for _, fr := range app {
		fmt.Fprintf(&b, "%s\t%s:%d\n", fr.Function, fr.File, fr.Line)
	}
	return b.String()
}

func TestParseFrame(t *testing.T) {
	f := func(line string, want stack.Frame, wantErr bool) {
		t.Helper()
		got, err := parseFrame(line)
		if got != want || (err != nil) != wantErr {
			t.Errorf("parseFrame(%q): got %v, %v; want %v, error %v", line, got, err, want, wantErr)
		}
	}
	f("main.main\t/src/main.go:12", stack.Frame{Function: "main.main", File: "/src/main.go", Line: 12}, false)
	f("main.main\tC:/src/main.go:12", stack.Frame{Function: "main.main", File: "C:/src/main.go", Line: 12}, false)
	f("main.main /src/main.go:12", stack.Frame{}, true)
	f("main.main\t/src/main.go", stack.Frame{}, true)
	f("\t/src/main.go:1", stack.Frame{}, true)
}
