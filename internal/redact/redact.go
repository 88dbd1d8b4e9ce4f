// Package redact removes literal values from SQL text, so that SQL kept for
// reports can be shown without the data written in it.
//
// [Dialect.SQL] replaces every literal with "?", read by the rules of
// one dialect; [SQL] is [Generic.SQL], for a driver of unknown dialect.
//
//   - string literals: '...' (with doubled-quote escapes), E'...' (with
//     backslash escapes), and the prefixed forms X'...', B'...', N'...'
//     (the prefix goes with the literal); in [MySQL] also "..." (a string
//     in MySQL's default mode), with backslash escapes in both; in
//     [PostgreSQL] and [Generic] also $tag$...$tag$;
//   - numeric literals: integers, decimals (1.5, .5, 1.), exponents (1e-3),
//     hexadecimal and binary (0x1F, 0b101), with PostgreSQL 16's digit
//     separators (1_000). A leading sign is an operator and is kept.
//
// It keeps identifiers, including those with digits (t1, col_2, and
// MySQL's identifiers that start with a digit, such as 1st), `quoted`
// identifiers, placeholders (?, ?1, $1, :name, @p1) and everything else.
// "..." is a quoted identifier in [PostgreSQL], kept; in [MySQL] a string
// (unless the server runs with ANSI_QUOTES, which redaction cannot see:
// the identifier is then redacted, never a string kept); in [Generic] and
// [SQLite] (which takes an unknown "name" for a string) it is redacted.
//
// Comments (--, /* */ and, in MySQL and Generic, # to the end of the
// line) are removed: each becomes one space, since a comment may hold
// anything. /* */ nests in PostgreSQL and Generic, not in MySQL and
// SQLite. This also drops MySQL's /*! ... */ and /*+ ... */ hints.
//
// Backslashes: [MySQL] reads a backslash in '...' and "..." as an escape
// (its default; a server with NO_BACKSLASH_ESCAPES reads 'a\' as a whole
// literal, and a literal that follows it may then be kept); [PostgreSQL]
// (standard_conforming_strings, the default since 9.1) and [SQLite] read
// it as a character, except in E'...'. [Generic] does not know which: a
// backslash before a quote makes everything from the literal's opening
// quote to the end "?".
//
// An unterminated literal or comment (SQL text cut by a length limit)
// runs to the end of the text, and so does a number cut in its exponent
// ("12e" or "3.5e-" at the very end).
//
// Redaction never panics, whatever its input (including invalid UTF-8,
// which is copied through), its result is never longer than its input,
// and it is idempotent: d.SQL(d.SQL(q)) == d.SQL(q).
package redact

import "strings"

// Dialect is the SQL dialect text is read in.
type Dialect uint8

// The dialects.
const (
	Generic    Dialect = iota // unknown: any reading of MySQL's and PostgreSQL's, redacting where they differ
	MySQL                     // MySQL and MariaDB, default sql_mode
	PostgreSQL                // PostgreSQL, standard_conforming_strings on
	SQLite                    // SQLite
)

// rules are a dialect's lexical rules.
type rules struct {
	backslash    int8 // in '...': 1 an escape, -1 a character, 0 unknown (ambiguous before a quote)
	doubleIdent  bool // "..." is an identifier, kept
	hashComment  bool // # starts a comment
	nested       bool // /* */ nests
	dollarQuotes bool // $tag$...$tag$ strings
}

var dialects = [...]rules{
	Generic:    {backslash: 0, hashComment: true, nested: true, dollarQuotes: true},
	MySQL:      {backslash: 1, hashComment: true},
	PostgreSQL: {backslash: -1, doubleIdent: true, nested: true, dollarQuotes: true},
	SQLite:     {backslash: -1},
}

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case MySQL:
		return "mysql"
	case PostgreSQL:
		return "postgres"
	case SQLite:
		return "sqlite"
	}
	return "generic"
}

// SQL returns q with its literal values replaced by "?" and its comments
// by a space, for a driver of unknown dialect: [Generic.SQL].
func SQL(q string) string { return Generic.SQL(q) }

// SQL returns q with its literal values replaced by "?" and its comments
// by a space, read as dialect d; see the package documentation.
func (d Dialect) SQL(q string) string {
	if int(d) >= len(dialects) {
		d = Generic
	}
	r := &dialects[d]
	var b strings.Builder
	b.Grow(len(q))
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == '"' && r.doubleIdent:
			// A PostgreSQL quoted identifier ("" escapes a quote): kept
			// when it is terminated.
			end, ok := quoted(q, i+1, c, -1)
			if !ok {
				b.WriteByte('?')
				return b.String()
			}
			b.WriteString(q[i:end])
			i = end
		case c == '\'' || c == '"':
			end, ok := quoted(q, i+1, c, r.backslash)
			b.WriteByte('?')
			if !ok {
				return b.String()
			}
			i = end
		case c == '`':
			// A MySQL quoted identifier: kept when it is terminated.
			j := strings.IndexByte(q[i+1:], '`')
			if j < 0 {
				b.WriteByte(c)
				i++
				continue
			}
			b.WriteString(q[i : i+j+2])
			i += j + 2
		case c == '-' && i+1 < len(q) && q[i+1] == '-' || c == '#' && r.hashComment:
			j := strings.IndexByte(q[i:], '\n')
			b.WriteByte(' ')
			if j < 0 {
				return b.String()
			}
			i += j // keep the newline
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end, ok := blockComment(q, i+2, r.nested)
			b.WriteByte(' ')
			if !ok {
				return b.String()
			}
			i = end
		case c == '$':
			if i+1 < len(q) && isDigit(q[i+1]) {
				// $1: a placeholder.
				j := i + 1
				for j < len(q) && isDigit(q[j]) {
					j++
				}
				b.WriteString(q[i:j])
				i = j
				continue
			}
			if tag, ok := dollarTag(q, i); ok && r.dollarQuotes {
				b.WriteByte('?')
				j := strings.Index(q[i+len(tag):], tag)
				if j < 0 {
					return b.String()
				}
				i += len(tag) + j + len(tag)
				continue
			}
			b.WriteByte(c)
			i++
		case c == '?':
			// ? and ?NNN placeholders. Like a number, ?NNN followed by
			// identifier characters runs on: ?1st is how "'x'1st"
			// comes out, and must come out again the same.
			j := i + 1
			for j < len(q) && isDigit(q[j]) {
				j++
			}
			if j > i+1 {
				for j < len(q) && isIdent(q[j]) {
					j++
				}
			}
			b.WriteString(q[i:j])
			i = j
		case isDigit(c) || c == '.' && i+1 < len(q) && isDigit(q[i+1]):
			j := number(q, i)
			if cutExponent(q, j) {
				// 12e or 3.5e- at the end: a number whose exponent the
				// length limit cut off, not an identifier.
				b.WriteByte('?')
				i = len(q)
				continue
			}
			if j < len(q) && isIdent(q[j]) {
				// 1st, 2fa_codes: a MySQL identifier starting with digits.
				for j < len(q) && isIdent(q[j]) {
					j++
				}
				b.WriteString(q[i:j])
				i = j
				continue
			}
			b.WriteByte('?')
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && isIdent(q[j]) {
				j++
			}
			if j-i == 1 && j < len(q) && q[j] == '\'' {
				switch c | 0x20 {
				case 'e': // E'...': backslash escapes, in both dialects
					end, ok := quoted(q, j+1, '\'', 1)
					b.WriteByte('?')
					if !ok {
						return b.String()
					}
					i = end
					continue
				case 'x', 'b', 'n': // X'ff', B'101', N'text'
					end, ok := quoted(q, j+1, '\'', r.backslash)
					b.WriteByte('?')
					if !ok {
						return b.String()
					}
					i = end
					continue
				}
			}
			b.WriteString(q[i:j])
			i = j
		case c == ':' || c == '@':
			// :name and @p1 placeholders, ::casts, @@variables: copy the
			// name with them so its digits are not taken for numbers.
			j := i + 1
			for j < len(q) && q[j] == c {
				j++
			}
			if j < len(q) && isIdentStart(q[j]) {
				for j < len(q) && isIdent(q[j]) {
					j++
				}
			}
			b.WriteString(q[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// quoted finds the end of a literal opened by quote just before start. A
// doubled quote is an escape. With backslash 1, a backslash escapes the
// next byte; with -1 it is a character; with 0 a quote after an odd run
// of backslashes makes the literal ambiguous between dialects, which is
// reported like an unterminated one. It returns the index after the
// closing quote, and false when the literal runs to the end.
func quoted(q string, start int, quote byte, backslash int8) (int, bool) {
	i := start
	for i < len(q) {
		switch q[i] {
		case '\\':
			if backslash > 0 {
				i += 2
				continue
			}
			if backslash < 0 {
				i++
				continue
			}
			j := i
			for j < len(q) && q[j] == '\\' {
				j++
			}
			if j < len(q) && q[j] == quote && (j-i)%2 == 1 {
				return len(q), false
			}
			i = j
		case quote:
			if i+1 < len(q) && q[i+1] == quote {
				i += 2
				continue
			}
			return i + 1, true
		default:
			i++
		}
	}
	return len(q), false
}

// blockComment finds the end of a /* */ comment whose opening ends at
// start, counting nested comments when nested is true.
func blockComment(q string, start int, nested bool) (int, bool) {
	depth := 1
	i := start
	for i+1 < len(q) {
		switch {
		case nested && q[i] == '/' && q[i+1] == '*':
			depth++
			i += 2
		case q[i] == '*' && q[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return len(q), false
}

// dollarTag returns the opening "$tag$" (or "$$") of a PostgreSQL
// dollar-quoted string starting at q[i] == '$', if there is one. A tag
// is an identifier without '$'. A '$' that ends an identifier (a$b$c) has
// been copied with it and never reaches here.
func dollarTag(q string, i int) (string, bool) {
	j := i + 1
	if j < len(q) && q[j] == '$' {
		return "$$", true
	}
	if j >= len(q) || !isIdentStart(q[j]) {
		return "", false
	}
	for j < len(q) && (isIdentStart(q[j]) || isDigit(q[j])) {
		j++
	}
	if j < len(q) && q[j] == '$' {
		return q[i : j+1], true
	}
	return "", false
}

// number returns the end of the numeric literal starting at q[i].
func number(q string, i int) int {
	if q[i] == '0' && i+2 < len(q) {
		switch q[i+1] | 0x20 {
		case 'x':
			if isHex(q[i+2]) {
				j := i + 2
				for j < len(q) && (isHex(q[j]) || q[j] == '_') {
					j++
				}
				return j
			}
		case 'b', 'o':
			if isDigit(q[i+2]) {
				j := i + 2
				for j < len(q) && (isDigit(q[j]) || q[j] == '_') {
					j++
				}
				return j
			}
		}
	}
	j := i
	for j < len(q) && (isDigit(q[j]) || q[j] == '_') {
		j++
	}
	if j < len(q) && q[j] == '.' {
		j++
		for j < len(q) && (isDigit(q[j]) || q[j] == '_') {
			j++
		}
	}
	if j < len(q) && q[j]|0x20 == 'e' {
		k := j + 1
		if k < len(q) && (q[k] == '+' || q[k] == '-') {
			k++
		}
		if k < len(q) && isDigit(q[k]) {
			for k < len(q) && isDigit(q[k]) {
				k++
			}
			j = k
		}
	}
	return j
}

// cutExponent reports whether the text after a number ending at j is an
// exponent's 'e' (and its sign) and nothing more: the number was cut
// there.
func cutExponent(q string, j int) bool {
	if j >= len(q) || q[j]|0x20 != 'e' {
		return false
	}
	j++
	if j < len(q) && (q[j] == '+' || q[j] == '-') {
		j++
	}
	return j == len(q)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// isIdentStart: a letter, '_' or any byte of a multi-byte UTF-8 sequence.
func isIdentStart(c byte) bool {
	return 'a' <= c|0x20 && c|0x20 <= 'z' || c == '_' || c >= 0x80
}

// isIdent: what may follow in an identifier (MySQL and PostgreSQL both
// allow '$' after the first character).
func isIdent(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }
