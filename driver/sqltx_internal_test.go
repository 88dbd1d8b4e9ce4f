package driver

import "testing"

// TestClassify: what a statement's first words do to a tx begun with SQL.
func TestClassify(t *testing.T) {
	f := func(q string, want verb, more bool) {
		t.Helper()
		v, i := classify(q)
		if v != want {
			t.Errorf("classify(%q) = %d; want %d", q, v, want)
		}
		if got := hasMore(q, i); got != more {
			t.Errorf("hasMore(%q) = %v; want %v", q, got, more)
		}
	}
	f("BEGIN", verbBegin, false)
	f("begin;", verbBegin, false)
	f("Begin Work", verbBegin, false)
	f("BEGIN TRANSACTION", verbBegin, false)
	f("BEGIN IMMEDIATE TRANSACTION", verbBegin, false)
	f("BEGIN ISOLATION LEVEL SERIALIZABLE", verbBegin, false)
	f("  \n\t-- a comment\n/* another */ BEGIN", verbBegin, false)
	f("# MySQL\nBEGIN", verbBegin, false)
	f("BEGIN NOT ATOMIC SELECT 1; END", verbNone, true)
	f("BEGINNING", verbNone, false)
	f("BEGIN; INSERT INTO t VALUES (1); COMMIT", verbBegin, true)
	f("BEGIN; -- done", verbBegin, false)
	f("START TRANSACTION", verbBegin, false)
	f("start transaction read only", verbBegin, false)
	f("START SLAVE", verbNone, false)
	f("SELECT 1", verbNone, false)
	f("SAVEPOINT a", verbNone, false)
	f("COMMIT", verbEnd, false)
	f("COMMIT WORK", verbEnd, false)
	f("COMMIT TRANSACTION", verbEnd, false)
	f("COMMIT AND NO CHAIN", verbEnd, false)
	f("COMMIT AND CHAIN", verbNone, false)
	f("END", verbEnd, false)
	f("END TRANSACTION", verbEnd, false)
	f("ROLLBACK", verbEnd, false)
	f("ROLLBACK WORK", verbEnd, false)
	f("ROLLBACK AND CHAIN", verbNone, false)
	f("ROLLBACK TO SAVEPOINT a", verbNone, false)
	f("ROLLBACK TO a", verbNone, false)
	f("ROLLBACK TRANSACTION TO SAVEPOINT a", verbNone, false)
	f("ABORT", verbEnd, false)
	f("PREPARE TRANSACTION 'x'", verbEnd, false)
	f("PREPARE s FROM 'SELECT 1'", verbNone, false)
	f("SET autocommit=0", verbAutocommitOff, false)
	f("SET autocommit = OFF", verbAutocommitOff, false)
	f("set AUTOCOMMIT := false", verbAutocommitOff, false)
	f("SET SESSION autocommit=0", verbAutocommitOff, false)
	f("SET @@autocommit=0", verbAutocommitOff, false)
	f("SET @@session.autocommit = 0, sql_mode = ''", verbAutocommitOff, false)
	f("SET autocommit=1", verbAutocommitOn, false)
	f("SET autocommit = ON;", verbAutocommitOn, false)
	f("SET autocommit = @saved", verbUnknown, false)
	f("SET autocommit = 0 + 1", verbUnknown, false)
	f("SET NAMES utf8mb4", verbNone, false)
	f("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", verbNone, false)
	f("SET GLOBAL autocommit=0", verbNone, false)
	f("SET autocommit=0; INSERT INTO t VALUES (1)", verbAutocommitOff, true)
	f("CREATE TABLE t (a INT)", verbImplicitCommit, false)
	f("CREATE TEMPORARY TABLE t (a INT)", verbNone, false)
	f("DROP TEMPORARY TABLE t", verbNone, false)
	f("drop table t", verbImplicitCommit, false)
	f("TRUNCATE t", verbImplicitCommit, false)
	f("LOCK TABLES t WRITE", verbImplicitCommit, false)
	f("SET PASSWORD = 'x'", verbImplicitCommit, false)
	f("CALL p()", verbUnknown, false)
	f("UPDATE t SET a = 1; COMMIT", verbNone, true)
	f("UPDATE t SET a = ';'", verbNone, true) // quotes are not parsed: unknown, no report
	f("INSERT INTO t VALUES ('a;b')", verbNone, true)
	f("", verbNone, false)
	f("/* unterminated", verbNone, false)
	f("-", verbNone, false)
}

// TestMayBegin: the hot path's one-byte test lets through every
// statement classify may find a BEGIN or SET in.
func TestMayBegin(t *testing.T) {
	c := &conn{}
	for _, q := range []string{"BEGIN", "begin", "START TRANSACTION", "SET autocommit=0", " BEGIN", "\nBEGIN", "-- c\nBEGIN", "/* c */BEGIN", "# c\nBEGIN"} {
		if !c.mayBegin(q) {
			t.Errorf("mayBegin(%q) = false", q)
		}
	}
	for _, q := range []string{"", "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "COMMIT", "(SELECT 1)"} {
		if c.mayBegin(q) {
			t.Errorf("mayBegin(%q) = true", q)
		}
	}
	for _, q := range []string{"BEGIN", "begin", "START TRANSACTION", "SET autocommit=0", "Set", " SELECT", "-- c\nSELECT"} {
		if surelyNone(q) {
			t.Errorf("surelyNone(%q) = true", q)
		}
	}
	for _, q := range []string{"SELECT 1", "select 1", "SHOW TABLES", "SAVEPOINT a", "BE", "bogus"} {
		if !surelyNone(q) {
			t.Errorf("surelyNone(%q) = false", q)
		}
	}
	c.sql.bits = sqlOpen
	if !c.mayBegin("COMMIT") {
		t.Error("in a tx: mayBegin(COMMIT) = false")
	}
}
