package sqltext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// writesByFolding is writes as it was before it compared bytes: the same
// rules with strings.EqualFold and strings.TrimLeft/IndexAny (which now
// also take \v and \f for white space before the first word, as the
// rest of the statement always did). On ASCII text the two must agree;
// FuzzWrites checks that they do.
func writesByFolding(q string) bool {
	q = strings.TrimLeft(q, " \t\r\n\v\f(")
	word := q
	if i := strings.IndexAny(q, " \t\r\n\v\f("); i >= 0 {
		word = q[:i]
	}
	in := func(w string, words []string) bool {
		for _, x := range words {
			if strings.EqualFold(w, x) {
				return true
			}
		}
		return false
	}
	switch {
	case in(word, readWords):
		var w1, w2, w3 string
		for w := range strings.FieldsSeq(q) {
			switch {
			case strings.EqualFold(w1, "FOR") && (strings.EqualFold(w, "UPDATE") || strings.EqualFold(w, "SHARE")),
				strings.EqualFold(w3, "FOR") && strings.EqualFold(w2, "NO") && strings.EqualFold(w1, "KEY") && strings.EqualFold(w, "UPDATE"),
				strings.EqualFold(w3, "LOCK") && strings.EqualFold(w2, "IN") && strings.EqualFold(w1, "SHARE") && strings.EqualFold(w, "MODE"):
				return true
			}
			w1, w2, w3 = w, w1, w2
		}
		return false
	case in(word, noWriteWords):
		return false
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func FuzzWrites(f *testing.F) {
	for _, q := range []string{
		"SELECT 1", "  (select * from t)", "select * from t for update",
		"SELECT * FROM t LOCK IN SHARE MODE", "UPDATE t SET a = 1",
		"WITH x AS (SELECT 1) SELECT * FROM x", "SET lock_timeout = '1s'",
		"SELECT * FROM t\n\tFOR NO KEY UPDATE", "select for_update from t",
		"show tables", "values (1)", "", "(", "SELECT(x) FOR SHARE",
		"select\vfor\fupdate", "\fSELECT 1", "\vUPDATE t", "DESC t", "descr t", "sELeCt 1 For Update",
		"SELECT 1 FOR\x00UPDATE", "[ELECT 1", "{elect 1",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if !isASCII(q) {
			// strings.EqualFold folds Unicode ("ſelect" is SELECT to
			// it), which no database does; writes compares ASCII only.
			return
		}
		if got, want := Writes(q), writesByFolding(q); got != want {
			t.Errorf("Writes(%q) = %v; the folding rules say %v", q, got, want)
		}
	})
}

func BenchmarkWrites(b *testing.B) {
	for _, q := range []string{
		"UPDATE items SET n = n + 1 WHERE id = ?",
		"SELECT id, name FROM items WHERE id = ?",
		"select id, name from items where id = ? for update",
	} {
		b.Run(strings.Fields(q)[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Writes(q)
			}
		})
	}
}

func TestWrites(t *testing.T) {
	f := func(q string, want bool) {
		t.Helper()
		if got := Writes(q); got != want {
			t.Errorf("Writes(%q) = %v; want %v", q, got, want)
		}
	}
	f("SELECT 1", false)
	f("  (select * from t)", false)
	f("select * from t for update", true)
	f("SELECT * FROM t LOCK IN SHARE MODE", true)
	f("UPDATE t SET a = 1", true)
	f("insert into t values (1)", true)
	f("WITH x AS (SELECT 1) SELECT * FROM x", false)
	f("SET lock_timeout = '1s'", false)
	f("DELETE FROM t", true)
	f("select * from t for share", true)
	f("SELECT * FROM t\n\tFOR NO KEY UPDATE", true)
	f("select * from t where fork = 1", false)
	f("select for_update from t", false)
	f("show tables", false)
	f("values (1)", false)
	f("\fSELECT 1", false) // form feed is white space before the first word too
}

func TestWritesDoesNotAllocate(t *testing.T) {
	q := "select id, name from items where id = ? for update"
	if n := testing.AllocsPerRun(100, func() { Writes(q) }); n != 0 {
		t.Errorf("writes allocates %v times per call; want 0", n)
	}
}
