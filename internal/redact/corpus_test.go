package redact_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/redact"
)

// corpusCase is one entry of testdata/corpus/*.txt.
type corpusCase struct {
	line     int
	in, want string
}

// readCorpus reads a corpus file: "> " lines are SQL text, each followed
// by its "= " line; "#" lines and blank lines are comments.
func readCorpus(t *testing.T, name string) []corpusCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "> "):
			cases = append(cases, corpusCase{line: n, in: l[2:]})
		case strings.HasPrefix(l, "= "):
			if len(cases) == 0 || cases[len(cases)-1].want != "" {
				t.Fatalf("%s:%d: = without >", name, n)
			}
			cases[len(cases)-1].want = l[2:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// leaked reports whether out still holds a literal of the corpus.
func leaked(out string) bool {
	return strings.Contains(strings.ToLower(out), "secret") || strings.Contains(out, "4242")
}

// TestCorpus redacts the corpus of each dialect with that dialect: every
// entry must come out as written, nothing may be kept, and the result
// is idempotent. It logs how Generic (the reading used for a driver of
// unknown dialect, and for every driver before dialects) fares on the
// same text.
func TestCorpus(t *testing.T) {
	for _, c := range []struct {
		file string
		d    redact.Dialect
	}{{"mysql.txt", redact.MySQL}, {"postgres.txt", redact.PostgreSQL}} {
		t.Run(c.d.String(), func(t *testing.T) {
			cases := readCorpus(t, c.file)
			if len(cases) < 20 {
				t.Fatalf("%d cases; want at least 20", len(cases))
			}
			var ok, genericOK, genericLeaks int
			for _, e := range cases {
				got := c.d.SQL(e.in)
				if squash(got) == squash(e.want) {
					ok++
				} else {
					t.Errorf("%s:%d: %s.SQL(%q)\n got %q\nwant %q", c.file, e.line, c.d, e.in, got, e.want)
				}
				if leaked(got) {
					t.Errorf("%s:%d: a literal kept: %q", c.file, e.line, got)
				}
				if again := c.d.SQL(got); again != got {
					t.Errorf("%s:%d: not idempotent: %q then %q", c.file, e.line, got, again)
				}
				g := redact.Generic.SQL(e.in)
				if squash(g) == squash(e.want) {
					genericOK++
				}
				if leaked(g) {
					genericLeaks++
				}
			}
			t.Logf("%s: %d cases; %s exact %d; generic exact %d, kept a literal %d",
				c.file, len(cases), c.d, ok, genericOK, genericLeaks)
		})
	}
}
