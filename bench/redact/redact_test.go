// Package redact compares sqlwatch's SQL redaction (internal/redact) with
// github.com/DataDog/go-sqllexer's obfuscator on the redaction corpus of
// each dialect (internal/redact/testdata/corpus): which output comes out
// as the corpus wants it, which keeps a literal, and at what cost. The
// figures and the choice they led to are in docs/integrations.md.
package redact

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/DataDog/go-sqllexer"

	"github.com/sqlwatch/sqlwatch/internal/redact"
)

type entry struct{ in, want string }

func corpus(t testing.TB, name string) []entry {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "internal", "redact", "testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var es []entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "> "):
			es = append(es, entry{in: l[2:]})
		case strings.HasPrefix(l, "= "):
			es[len(es)-1].want = l[2:]
		}
	}
	return es
}

var dialects = []struct {
	file string
	ours redact.Dialect
	dbms sqllexer.DBMSType
}{
	{"mysql.txt", redact.MySQL, sqllexer.DBMSMySQL},
	{"postgres.txt", redact.PostgreSQL, sqllexer.DBMSPostgres},
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func leaked(out string) bool {
	return strings.Contains(strings.ToLower(out), "secret") || strings.Contains(out, "4242")
}

// TestCorpus logs, per dialect, how many entries each redactor gets
// exactly right and how many outputs keep a literal, with each output
// that differs. It fails only when ours keeps a literal or misses.
func TestCorpus(t *testing.T) {
	obf := sqllexer.NewObfuscator()
	for _, d := range dialects {
		es := corpus(t, d.file)
		var oursOK, oursLeak, lexOK, lexLeak int
		for _, e := range es {
			o := d.ours.SQL(e.in)
			l := obf.Obfuscate(e.in, sqllexer.WithDBMS(d.dbms))
			if squash(o) == squash(e.want) {
				oursOK++
			} else {
				t.Errorf("%s: ours %q; want %q", d.file, o, e.want)
			}
			if leaked(o) {
				oursLeak++
			}
			if squash(l) == squash(e.want) {
				lexOK++
			} else {
				t.Logf("%s: go-sqllexer %q; want %q", d.file, l, e.want)
			}
			if leaked(l) {
				lexLeak++
				t.Logf("%s: go-sqllexer kept a literal: %q", d.file, l)
			}
		}
		t.Logf("%s: %d entries: in-house exact %d, kept a literal %d; go-sqllexer exact %d, kept a literal %d",
			d.file, len(es), oursOK, oursLeak, lexOK, lexLeak)
		if oursLeak > 0 {
			t.Errorf("in-house kept a literal in %d entries", oursLeak)
		}
	}
}

// BenchmarkRedact redacts the whole corpus of a dialect once per
// iteration.
func BenchmarkRedact(b *testing.B) {
	obf := sqllexer.NewObfuscator()
	for _, d := range dialects {
		es := corpus(b, d.file)
		var n int64
		for _, e := range es {
			n += int64(len(e.in))
		}
		b.Run("inhouse/"+d.ours.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n)
			for b.Loop() {
				for _, e := range es {
					_ = d.ours.SQL(e.in)
				}
			}
		})
		b.Run("sqllexer/"+d.ours.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(n)
			for b.Loop() {
				for _, e := range es {
					_ = obf.Obfuscate(e.in, sqllexer.WithDBMS(d.dbms))
				}
			}
		})
	}
}
