package redact_test

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sqlwatch/sqlwatch/internal/redact"
)

func TestSQL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"SELECT 1", "SELECT ?"},
		{"SELECT * FROM t1 WHERE col_2 = 42 AND x = -3.5e-2", "SELECT * FROM t1 WHERE col_2 = ? AND x = -?"},
		{"SELECT .5, 1., 0x1F, 0b101, 1_000, 7E3", "SELECT ?, ?, ?, ?, ?, ?"},
		{"UPDATE t SET name = 'O''Brien' WHERE id = $1", "UPDATE t SET name = ? WHERE id = $1"},
		{"INSERT INTO t VALUES (?, ?, 'hunter2')", "INSERT INTO t VALUES (?, ?, ?)"},
		{`SELECT "secret" FROM t`, "SELECT ? FROM t"},
		{"SELECT `col1` FROM `t2`", "SELECT `col1` FROM `t2`"},
		{`SELECT 'a\\', 'b'`, "SELECT ?, ?"},
		{`SELECT E'it\'s', 2`, "SELECT ?, ?"},
		{`SELECT 'it\'s', 'secret'`, "SELECT ?"}, // dialects disagree: the rest goes
		{"SELECT $$a 'b' 3$$, $tag$x$$y$tag$, 4", "SELECT ?, ?, ?"},
		{"SELECT X'DEADBEEF', x'00', B'101', N'nom', _utf8mb4'hé'", "SELECT ?, ?, ?, ?, _utf8mb4?"},
		{"SELECT a$1, $2, ?3, :name, @p1, @@version, x::int8", "SELECT a$1, $2, ?3, :name, @p1, @@version, x::int8"},
		{"SELECT 1st, 2fa FROM t -- id = 5\nWHERE a = 6", "SELECT 1st, 2fa FROM t  \nWHERE a = ?"},
		{"SELECT /* token 'x' /* nested */ 9 */ 10", "SELECT   ?"},
		{"SELECT 1 # comment 'x'\n, 2", "SELECT ?  \n, ?"},
		{"SELECT 'unterminated", "SELECT ?"},
		{"SELECT 1 /* unterminated", "SELECT ?  "},
		{"SELECT 'cut by the limit…", "SELECT ?"},
		{"SELECT a FROM t WHERE x = 12e", "SELECT a FROM t WHERE x = ?"},   // cut in the exponent
		{"SELECT a FROM t WHERE x = 3.5e-", "SELECT a FROM t WHERE x = ?"}, // likewise
		{"SELECT 12e FROM t", "SELECT 12e FROM t"},                         // an identifier, as MySQL reads it
		{"SELECT a[1:2]", "SELECT a[?:?]"},
		{"héllo wörld 3", "héllo wörld ?"},
		{"\xff\xfe 12 '\xff'", "\xff\xfe ? ?"},
	} {
		got := redact.SQL(c.in)
		if got != c.want {
			t.Errorf("SQL(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if again := redact.SQL(got); again != got {
			t.Errorf("not idempotent on %q: %q then %q", c.in, got, again)
		}
	}
}

// FuzzRedactSQL checks the properties of SQL on any input: no panic, a
// result no longer than the input, idempotence, and, for inputs built
// around one literal, that the literal is gone.
func FuzzRedactSQL(f *testing.F) {
	f.Add("SELECT * FROM t1 WHERE a = 'x' AND b = 2", "hunter2", int64(1234))
	f.Add("INSERT INTO t VALUES ($1, E'a\\'b', $$c$$)", "it''s", int64(-5))
	f.Fuzz(func(t *testing.T, q, lit string, n int64) {
		for _, d := range []redact.Dialect{redact.Generic, redact.MySQL, redact.PostgreSQL, redact.SQLite} {
			fuzzDialect(t, d, q, lit, n)
		}
	})
}

func fuzzDialect(t *testing.T, d redact.Dialect, q, lit string, n int64) {
	out := d.SQL(q)
	if len(out) > len(q) {
		t.Fatalf("%s.SQL(%q) = %q: longer than its input", d, q, out)
	}
	if again := d.SQL(out); again != out {
		t.Fatalf("%s: not idempotent: SQL(%q) = %q, SQL of that = %q", d, q, out, again)
	}
	if utf8.ValidString(q) && !utf8.ValidString(out) {
		t.Fatalf("%s.SQL(%q) = %q: invalid UTF-8 from valid input", d, q, out)
	}

	// One string literal whose content has no quote or backslash.
	if !strings.ContainsAny(lit, `'\`) {
		in := "SELECT x FROM t WHERE a = '" + lit + "' AND b = ?"
		if got, want := d.SQL(in), "SELECT x FROM t WHERE a = ? AND b = ?"; got != want {
			t.Fatalf("%s.SQL(%q) = %q; want %q", d, in, got, want)
		}
		if d == redact.Generic || d == redact.PostgreSQL {
			in = "SELECT $q$" + strings.ReplaceAll(lit, "$", "") + "$q$ FROM t"
			if got, want := d.SQL(in), "SELECT ? FROM t"; got != want {
				t.Fatalf("%s.SQL(%q) = %q; want %q", d, in, got, want)
			}
		}
	}
	// Any string literal, escaped by doubling quotes (and backslashes,
	// which every dialect then reads as one literal).
	in := "UPDATE t SET v = '" + strings.ReplaceAll(strings.ReplaceAll(lit, `\`, `\\`), "'", "''") + "' WHERE id = $1"
	if got, want := d.SQL(in), "UPDATE t SET v = ? WHERE id = $1"; got != want {
		t.Fatalf("%s.SQL(%q) = %q; want %q", d, in, got, want)
	}
	// In MySQL, any literal escaped with backslashes, then more text.
	if d == redact.MySQL {
		in := "UPDATE t SET v = '" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(lit) + "', w = 'x' WHERE id = 7"
		if got, want := d.SQL(in), "UPDATE t SET v = ?, w = ? WHERE id = ?"; got != want {
			t.Fatalf("%s.SQL(%q) = %q; want %q", d, in, got, want)
		}
	}
	// A standalone number: no digit of it is left.
	in = "SELECT c1 FROM t2 WHERE id = " + strconv.FormatUint(uint64(n), 10) + " AND f = 0.25e3"
	if got, want := d.SQL(in), "SELECT c1 FROM t2 WHERE id = ? AND f = ?"; got != want {
		t.Fatalf("%s.SQL(%q) = %q; want %q", d, in, got, want)
	}
}
