// Package sqltext reads SQL text on the hot path: whether a statement
// writes or locks rows, and where to cut a long one. Neither allocates.
package sqltext

// Writes reports whether a statement writes or takes row locks: its first
// word is not SELECT, WITH, SHOW, EXPLAIN, DESCRIBE, VALUES, PRAGMA or
// SET, or it is a SELECT ... FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE.
// Keywords are matched without regard to ASCII case. It runs on every
// statement of a tx until one writes, so it does not allocate and
// compares bytes rather than folding Unicode.
func Writes(q string) bool {
	i := 0
	for i < len(q) && isWordSep(q[i]) {
		i++
	}
	j := i
	for j < len(q) && !isWordSep(q[j]) {
		j++
	}
	word := q[i:j]
	switch {
	case foldIn(word, readWords):
		// The last three words before each, words being separated by
		// ASCII white space (as SQL lexers separate them).
		var w1, w2, w3 string
		for rest := q[j:]; ; {
			for len(rest) > 0 && isSpace(rest[0]) {
				rest = rest[1:]
			}
			if rest == "" {
				break
			}
			k := 1
			for k < len(rest) && !isSpace(rest[k]) {
				k++
			}
			w := rest[:k]
			rest = rest[k:]
			// Each pattern ends in UPDATE, SHARE or MODE: only a word of
			// 4 to 6 bytes can end one.
			switch {
			case len(w) < 4 || len(w) > 6:
			case foldEq(w1, "FOR") && (foldEq(w, "UPDATE") || foldEq(w, "SHARE")),
				foldEq(w3, "FOR") && foldEq(w2, "NO") && foldEq(w1, "KEY") && foldEq(w, "UPDATE"),
				foldEq(w3, "LOCK") && foldEq(w2, "IN") && foldEq(w1, "SHARE") && foldEq(w, "MODE"):
				return true
			}
			w1, w2, w3 = w, w1, w2
		}
		return false
	case foldIn(word, noWriteWords):
		return false
	}
	return true
}

// isSpace reports whether c is ASCII white space.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isWordSep reports whether c ends the first word of a statement (or is
// skipped before it): white space or an opening parenthesis.
func isWordSep(c byte) bool { return isSpace(c) || c == '(' }

var (
	readWords    = []string{"SELECT", "WITH", "VALUES", "TABLE"}
	noWriteWords = []string{"SHOW", "EXPLAIN", "DESCRIBE", "DESC", "PRAGMA", "SET", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
)

// foldIn reports whether w is one of words (upper-case ASCII), ignoring
// ASCII case.
func foldIn(w string, words []string) bool {
	for _, x := range words {
		if foldEq(w, x) {
			return true
		}
	}
	return false
}

// foldEq reports whether w equals upper, an upper-case ASCII keyword,
// ignoring ASCII case: a letter of w matches its own upper or lower case,
// any other byte only itself.
func foldEq(w, upper string) bool {
	if len(w) != len(upper) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c, u := w[i], upper[i]
		if c != u && (u < 'A' || u > 'Z' || c != u+('a'-'A')) {
			return false
		}
	}
	return true
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
