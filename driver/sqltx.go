package driver

import (
	"context"
	"database/sql/driver"
	"log/slog"
	"reflect"
	"unicode/utf8"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/errclass"
	"github.com/sqlwatch/sqlwatch/internal/goid"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Transactions begun with SQL text (sql_tx_leak): a conn that goes back
// to the pool inside a transaction its statements opened (BEGIN, START
// TRANSACTION, SET autocommit = 0) rather than BeginTx. See
// docs/sql-text-tx.md.
//
// Each statement run outside a driver tx is looked at by its first word,
// and only when the conn is in such a tx or the statement starts with
// 'b', 's', whitespace or a comment; otherwise the look is one byte. The
// state changes only on a statement that succeeded. Where the driver
// can say for sure (pgx), its transaction status decides at the release
// and the text only names the line that began the tx.

// dialect is the SQL of the wrapped driver's server, as far as the text
// tracking needs it.
type dialect uint8

const (
	dialectUnknown  dialect = iota
	dialectMySQL            // go-sql-driver/mysql: MySQL, MariaDB
	dialectPostgres         // lib/pq, pgx
	dialectSQLite
)

// The state bits of sqlTx.
const (
	sqlOpen     uint8 = 1 << iota // a BEGIN ran and nothing has ended its tx
	sqlManual                     // MySQL: SET autocommit = 0 ran, and no SET autocommit = 1 since
	sqlReported                   // the release was reported: once per tx
	sqlLeft                       // reported and kept by the pool: the next statement is reported
	sqlPending                    // released in the tx: reported once the pool is seen to keep the conn
)

// sqlTx is a conn's transaction begun with SQL text. database/sql
// serializes the calls on a conn, so it needs no lock.
type sqlTx struct {
	bits    uint8
	dialect dialect
	status  txStatuser // the driver's own transaction status (pgx); nil when it has none
	begin   *sqlSite   // where the tx began (sqlOpen); kept for reuse once allocated
	off     *sqlSite   // where autocommit was turned off (sqlManual)
	rel     *sqlSite   // where the conn was released (sqlPending)
}

// sqlSite is where a statement that began a tx ran.
type sqlSite struct {
	st    callstack.Stack
	goid  int64
	at    int64       // internal/clock
	query string      // cut and copied: never the application's string
	attrs []slog.Attr // the checkout's context attributes (WithContextAttrs)
}

// txStatuser is pgconn.PgConn's TxStatus: 'I' idle, 'T' in a
// transaction, 'E' in a failed one; read from the last ReadyForQuery,
// without a round trip. And IsClosed: pgx's stdlib has no Validator, so
// a conn it closed (a cancelled statement) still goes back to the pool,
// to be refused by ResetSession; its status is stale.
type txStatuser interface {
	TxStatus() byte
	IsClosed() bool
}

// init sets the dialect of ci, a conn of a driver of grammar g (the
// pool's), and for pgx where to read its transaction status. Called once
// per conn, when it is opened.
func (s *sqlTx) init(ci driver.Conn, g dsnGrammar) {
	switch g {
	case grammarMySQL:
		s.dialect = dialectMySQL
	case grammarPQ:
		s.dialect = dialectPostgres
	case grammarPGX:
		s.dialect = dialectPostgres
		s.status = pgxStatus(ci)
	case grammarSQLite:
		s.dialect = dialectSQLite
	}
}

// pgxStatus returns the *pgconn.PgConn under pgx's *stdlib.Conn
// (c.Conn().PgConn(), fixed for the conn's life), found by method name so
// that this package imports no driver; nil if the methods are not there.
func pgxStatus(ci driver.Conn) (s txStatuser) {
	defer func() {
		if recover() != nil {
			s = nil
		}
	}()
	// Constant method names: the linker then keeps only methods of those
	// names, where a computed name keeps every exported method of every type.
	v := call0(reflect.ValueOf(ci).MethodByName("Conn"))
	if v.IsValid() {
		v = call0(v.MethodByName("PgConn"))
	}
	if !v.IsValid() {
		return nil
	}
	s, _ = v.Interface().(txStatuser)
	return s
}

// call0 calls m, a method with no arguments and one pointer result, and
// returns that result; the zero Value when m is not such a method or the
// result is nil.
func call0(m reflect.Value) reflect.Value {
	if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
		return reflect.Value{}
	}
	v := m.Call(nil)[0]
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}
	}
	return v
}

// mayBegin is the hot path's test, made after every statement outside
// a driver tx: nothing more happens unless the conn is in a tx begun
// with SQL or query's first byte is one a BEGIN, START or SET may start
// with (whitespace and comments included).
func (c *conn) mayBegin(query string) bool {
	return c.sql.bits != 0 || (query != "" && beginByte[query[0]])
}

// beginByte marks the first bytes of BEGIN, START, SET, and of leading
// whitespace and comments.
var beginByte = [256]bool{'B': true, 'b': true, 'S': true, 's': true,
	' ': true, '\t': true, '\n': true, '\r': true, '\f': true, '-': true, '/': true, '#': true}

// sqlText is called after a statement ran on c when mayBegin (err is its
// error, never driver.ErrSkip). Inside a driver tx the text is that tx's
// business.
func (c *conn) sqlText(ctx context.Context, query string, err error) {
	if c.sql.bits == 0 && surelyNone(query) {
		return // SELECT, SHOW, SAVEPOINT...
	}
	if c.tx != nil || c.p.detect&detectSQLTx == 0 {
		return
	}
	s := &c.sql
	v, rest := classify(query)
	if s.bits == 0 && v != verbBegin && v != verbAutocommitOff {
		return // SELECT, SAVEPOINT...
	}
	if s.bits&sqlLeft != 0 && v != verbEnd && v != verbAutocommitOn {
		// The first statement of the checkout after a release inside the
		// tx, unless it ends it (a ROLLBACK on taking a conn is a cure).
		s.bits &^= sqlLeft
		c.reportSQLTx(track.SQLTxReused, query, nil, c.p.tracker.ContextAttrs(ctx))
	}
	if err != nil {
		// No change, except where the server rolls back the whole tx on
		// some errors (MySQL's deadlock victim, SQLite's busy or full):
		// not knowing, forget it.
		if s.bits&sqlOpen != 0 && s.dialect != dialectPostgres {
			if cl := errclass.Classify(err); cl != errclass.ClassOther && cl != errclass.ClassConstraint {
				s.bits &^= sqlOpen
			}
		}
		s.settle()
		return
	}
	if s.status == nil && hasMore(query, rest) {
		// "BEGIN; INSERT ...; COMMIT": the state after it is unknown.
		s.bits &^= sqlOpen | sqlManual
		s.settle()
		return
	}
	switch v {
	case verbBegin:
		// MySQL: a BEGIN in a tx commits it and begins a new one;
		// PostgreSQL: it is a warning, the tx goes on.
		if s.bits&sqlOpen == 0 || s.dialect == dialectMySQL {
			s.begin = c.site(s.begin, query)
			s.bits = s.bits&^(sqlReported|sqlLeft) | sqlOpen
		}
	case verbEnd:
		s.bits &^= sqlOpen
	case verbAutocommitOff:
		if s.bits&sqlManual == 0 {
			s.off = c.site(s.off, query)
			s.bits |= sqlManual
		}
	case verbAutocommitOn:
		s.bits &^= sqlOpen | sqlManual // MySQL commits the open tx
	case verbImplicitCommit:
		switch s.dialect {
		case dialectMySQL:
			s.bits &^= sqlOpen
		case dialectUnknown:
			s.bits &^= sqlOpen | sqlManual
		}
	case verbUnknown:
		if s.dialect != dialectPostgres {
			s.bits &^= sqlOpen | sqlManual
		}
	}
	s.settle()
}

// surelyNone reports whether query, which passed mayBegin, can be told
// by its first three bytes to be no BEGIN, START or SET (a SELECT, say).
// Leading whitespace and comments are left to classify.
func surelyNone(q string) bool {
	if len(q) < 3 {
		return true
	}
	b1, b2 := q[1]|0x20, q[2]|0x20
	switch q[0] | 0x20 {
	case 'b':
		return b1 != 'e' || b2 != 'g'
	case 's':
		return (b1 != 'e' || b2 != 't') && (b1 != 't' || b2 != 'a')
	}
	return false
}

// settle forgets the report flags once the conn is out of the tx.
func (s *sqlTx) settle() {
	if s.bits&(sqlOpen|sqlManual) == 0 {
		s.bits = 0
	}
}

// site records where the statement query, run by the caller's caller's
// caller, began a tx (or released the conn inside one), in st (allocated
// if nil), with the checkout's context attributes.
func (c *conn) site(st *sqlSite, query string) *sqlSite {
	if st == nil {
		st = new(sqlSite)
	}
	st.st.Capture(2)
	st.goid = goid.Get()
	st.at = clock.Now()
	st.query = cutText(query)
	st.attrs = nil
	if c.res != nil {
		st.attrs = c.res.Attrs()
	}
	return st
}

// maxSiteText bounds the SQL text kept for the statement that began a tx
// (the tracker cuts it further to its query limit).
const maxSiteText = 256

// cutText returns a copy of q cut to maxSiteText bytes on a UTF-8
// boundary, marked "…" when cut.
func cutText(q string) string {
	if len(q) <= maxSiteText {
		return string([]byte(q))
	}
	n := maxSiteText
	for n > 0 && !utf8.RuneStart(q[n]) {
		n--
	}
	return string([]byte(q[:n])) + "…"
}

// sqlBegun is called after a BeginTx succeeded on c while c was in a tx
// begun with SQL: MySQL's START TRANSACTION commits it, PostgreSQL folds
// it into the driver's tx, which ends it (SQLite and lib/pq refuse the
// BeginTx).
func (c *conn) sqlBegun(attrs []slog.Attr) {
	s := &c.sql
	if s.bits&sqlLeft != 0 && c.p.detect&detectSQLTx != 0 {
		s.bits &^= sqlLeft
		c.reportSQLTx(track.SQLTxReused, "BEGIN", nil, attrs)
	}
	s.bits &^= sqlOpen
	s.settle()
}

// sqlRelease is called by IsValid, before the checkout ends; ok is
// IsValid's answer. A conn the pool discards is no leak: the server ends
// its tx. Since the pool may still discard a conn IsValid kept (over
// MaxIdleConns, past its lifetime, DB.Close), the release is only noted
// here, with its stack; it is reported when the conn is taken again
// (sqlRetaken) or closed later by another goroutine (sqlClosed).
func (c *conn) sqlRelease(ok bool) {
	s := &c.sql
	if !ok {
		s.bits = 0
		return
	}
	if c.tx != nil || c.p.detect&detectSQLTx == 0 {
		return
	}
	if s.status != nil {
		if st := s.status.TxStatus(); (st != 'T' && st != 'E') || s.status.IsClosed() {
			s.bits = 0
			return
		}
	}
	if (s.bits&(sqlOpen|sqlManual) == 0 && s.status == nil) || s.bits&sqlReported != 0 {
		return
	}
	s.rel = c.site(s.rel, "")
	if s.bits&(sqlOpen|sqlManual) == 0 {
		// The driver says the conn is in a tx no recognised statement
		// began: the report names the release, with the checkout's age.
		b := *s.rel
		if c.res != nil {
			b.at = clock.Of(c.res.Start())
		}
		s.begin = &b
		s.bits |= sqlOpen
	}
	s.bits |= sqlReported | sqlPending
}

// sqlRetaken is called when a new checkout of c starts while a release
// inside a tx is pending: the pool kept the conn. The next statement is
// reported too.
func (c *conn) sqlRetaken() {
	s := &c.sql
	s.bits = s.bits&^sqlPending | sqlLeft
	// pgx's ResetSession refuses a conn in a tx: no conn death.
	c.explained = true
	c.reportSQLTx(track.SQLTxReleased, "", s.rel, nil)
}

// sqlClosed is called when c is closed while a release inside a tx is
// pending. Closed by the releasing goroutine, the pool discarded it at
// the release (putConn closes it at once): no leak. Closed by another
// (the pool's cleaner, past ConnMaxIdleTime or ConnMaxLifetime), it sat
// in the pool inside the tx: reported.
func (c *conn) sqlClosed() {
	s := &c.sql
	if s.rel.goid != goid.Get() {
		c.reportSQLTx(track.SQLTxReleased, "", s.rel, nil)
	}
	s.bits = 0
}

// reportSQLTx reports a sql_tx_leak: here is where the conn was released
// (nil: the caller's caller, captured now, whose statement's context
// attributes are hereAttrs), and the tx is named by the statement that
// began it.
func (c *conn) reportSQLTx(state, query string, here *sqlSite, hereAttrs []slog.Attr) {
	e := &track.MisuseEvent{Kind: track.MisuseSQLTxLeak, State: state, Query: query}
	s := &c.sql
	var at *sqlSite
	switch {
	case s.bits&sqlOpen != 0:
		at = s.begin
	case s.bits&sqlManual != 0:
		at = s.off
	}
	if at != nil {
		e.ThereStack, e.ThereGoroutine, e.ThereQuery, e.ThereAttrs = at.st, at.goid, at.query, at.attrs
		e.Age = clock.Since(at.at)
	}
	if here != nil {
		e.Here, e.HereGoroutine, e.HereAttrs = here.st, here.goid, here.attrs
	} else {
		e.Here.Capture(2)
		e.HereGoroutine, e.HereAttrs = goid.Get(), hereAttrs
	}
	c.p.tracker.ReportMisuse(e)
}

// verb is what a statement does to a tx begun with SQL.
type verb uint8

const (
	verbNone           verb = iota
	verbBegin               // BEGIN, START TRANSACTION
	verbEnd                 // COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION
	verbAutocommitOff       // SET autocommit = 0
	verbAutocommitOn        // SET autocommit = 1
	verbImplicitCommit      // MySQL's implicit commit: CREATE, ALTER, DROP, TRUNCATE, RENAME, GRANT, LOCK TABLES, ...
	verbUnknown             // may end or begin one: CALL, UNLOCK (MySQL)
)

// classify returns what q does to a tx, by its first words, and where
// the words it read end. Whitespace and comments ("--", "#", "/* */")
// before and between them are skipped.
func classify(q string) (verb, int) {
	w, i := word(q, 0)
	next := func() string {
		var n string
		n, i = word(q, i)
		return n
	}
	switch {
	case eq(w, "begin"):
		if eq(next(), "not") {
			return verbNone, i // MariaDB's BEGIN NOT ATOMIC: a compound statement
		}
		return verbBegin, i
	case eq(w, "start"):
		if eq(next(), "transaction") {
			return verbBegin, i
		}
	case eq(w, "commit"), eq(w, "end"):
		return ends(q, i)
	case eq(w, "rollback"):
		j := i
		n := next()
		if eq(n, "work") || eq(n, "transaction") {
			j = i
			n = next()
		}
		if eq(n, "to") {
			return verbNone, i // ROLLBACK TO SAVEPOINT: the tx goes on
		}
		return ends(q, j)
	case eq(w, "abort"):
		return verbEnd, i
	case eq(w, "prepare"):
		if eq(next(), "transaction") {
			return verbEnd, i // PostgreSQL: the tx leaves the session
		}
	case eq(w, "set"):
		return setAutocommit(q, i)
	case eq(w, "create"), eq(w, "drop"):
		if eq(next(), "temporary") {
			return verbNone, i
		}
		return verbImplicitCommit, i
	case eq(w, "alter"), eq(w, "truncate"), eq(w, "rename"), eq(w, "grant"), eq(w, "revoke"), eq(w, "lock"),
		eq(w, "analyze"), eq(w, "optimize"), eq(w, "repair"), eq(w, "check"), eq(w, "flush"), eq(w, "reset"),
		eq(w, "cache"), eq(w, "install"), eq(w, "uninstall"):
		return verbImplicitCommit, i
	case eq(w, "call"), eq(w, "unlock"):
		return verbUnknown, i
	}
	return verbNone, i
}

// ends classifies the rest of a COMMIT or ROLLBACK from i: AND CHAIN
// begins a new tx at once.
func ends(q string, i int) (verb, int) {
	for range 3 {
		var w string
		w, i = word(q, i)
		switch {
		case eq(w, "chain"):
			return verbNone, i
		case eq(w, "no"), w == "":
			return verbEnd, i
		}
	}
	return verbEnd, i
}

// setAutocommit classifies a SET from i: [SESSION | LOCAL] [@@[SESSION.
// | LOCAL.]]autocommit {= | :=} {0 | 1 | ON | OFF | TRUE | FALSE}.
func setAutocommit(q string, i int) (verb, int) {
	w, j := word(q, i)
	if eq(w, "session") || eq(w, "local") {
		i = j
	}
	i = skip(q, i)
	if len(q)-i >= 2 && q[i] == '@' && q[i+1] == '@' {
		i += 2
		if w, j = word(q, i); (eq(w, "session") || eq(w, "local")) && j < len(q) && q[j] == '.' {
			i = j + 1
		}
	}
	w, i = word(q, i)
	if eq(w, "password") {
		return verbImplicitCommit, i // MySQL
	}
	if !eq(w, "autocommit") {
		return verbNone, i
	}
	i = skip(q, i)
	if i < len(q) && q[i] == ':' {
		i++
	}
	if i >= len(q) || q[i] != '=' {
		return verbUnknown, i
	}
	w, i = word(q, i+1)
	v := verbUnknown
	switch {
	case w == "0" || eq(w, "off") || eq(w, "false"):
		v = verbAutocommitOff
	case w == "1" || eq(w, "on") || eq(w, "true"):
		v = verbAutocommitOn
	}
	if j := skip(q, i); j < len(q) && q[j] != ';' && q[j] != ',' {
		return verbUnknown, i // an expression
	}
	return v, i
}

// word returns the word (letters, digits, '_') at the first byte of q at
// or after i that is no whitespace or comment, and the index after it;
// "" if there is none.
func word(q string, i int) (string, int) {
	i = skip(q, i)
	j := i
	for j < len(q) {
		b := q[j] | 0x20
		if (b < 'a' || b > 'z') && (q[j] < '0' || q[j] > '9') && q[j] != '_' {
			break
		}
		j++
	}
	return q[i:j], j
}

// skip returns the index of the first byte of q at or after i that is no
// whitespace and in no comment.
func skip(q string, i int) int {
	for i < len(q) {
		switch q[i] {
		case ' ', '\t', '\n', '\r', '\f':
			i++
		case '-', '#':
			if q[i] == '-' && (i+1 >= len(q) || q[i+1] != '-') {
				return i
			}
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case '/':
			if i+1 >= len(q) || q[i+1] != '*' {
				return i
			}
			end := indexFrom(q, i+2, "*/")
			if end < 0 {
				return len(q)
			}
			i = end + 2
		default:
			return i
		}
	}
	return i
}

func indexFrom(q string, i int, sub string) int {
	for j := i; j+len(sub) <= len(q); j++ {
		if q[j:j+len(sub)] == sub {
			return j
		}
	}
	return -1
}

// eq reports whether w equals the lower-case ASCII word lower, ignoring
// ASCII case.
func eq(w, lower string) bool {
	if len(w) != len(lower) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i]|0x20 != lower[i] && w[i] != lower[i] {
			return false
		}
	}
	return true
}

// hasMore reports whether q has another statement after a ';' at or
// after i. Quotes are not parsed: a ';' in a literal counts as a
// separator (the state becomes unknown: no report), so that no quoting
// rule of one server can hide a COMMIT from the check.
func hasMore(q string, i int) bool {
	for i < len(q) {
		if q[i] != ';' {
			i++
			continue
		}
		for i < len(q) && q[i] == ';' {
			i = skip(q, i+1)
		}
		return i < len(q)
	}
	return false
}
