//lint:file-ignore SA1019 the fake drivers play legacy drivers on purpose: these tests call the deprecated interfaces they offer

package fakedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var profiles = []Profile{Full, Legacy, ResetterOnly}

// forEachProfile runs f as a parallel subtest for every profile.
func forEachProfile(t *testing.T, f func(t *testing.T, p Profile)) {
	t.Helper()
	for _, p := range profiles {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			f(t, p)
		})
	}
}

var registered atomic.Int64

// openDB opens d through sql.OpenDB, or through sql.Register + sql.Open under
// a unique name when viaRegister is set, and closes it at the end of the
// test.
func openDB(t *testing.T, d *Driver, viaRegister bool) *sql.DB {
	t.Helper()
	var db *sql.DB
	if viaRegister {
		name := fmt.Sprintf("fakedb-test-%d", registered.Add(1))
		sql.Register(name, d.Driver())
		var err error
		db, err = sql.Open(name, "dsn-is-ignored")
		if err != nil {
			t.Fatalf("sql.Open: %v", err)
		}
	} else {
		db = d.OpenDB()
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ---- interface sets ----

type iface struct {
	name string
	has  func(any) bool
}

func is[T any](name string) iface {
	return iface{name, func(v any) bool { _, ok := v.(T); return ok }}
}

// universe is every interface a value could be probed for.
var universe = []iface{
	is[driver.Driver]("Driver"),
	is[driver.DriverContext]("DriverContext"),
	is[driver.Connector]("Connector"),
	is[io.Closer]("io.Closer"),
	is[driver.Conn]("Conn"),
	is[driver.Pinger]("Pinger"),
	is[driver.Execer]("Execer"),
	is[driver.ExecerContext]("ExecerContext"),
	is[driver.Queryer]("Queryer"),
	is[driver.QueryerContext]("QueryerContext"),
	is[driver.ConnPrepareContext]("ConnPrepareContext"),
	is[driver.ConnBeginTx]("ConnBeginTx"),
	is[driver.SessionResetter]("SessionResetter"),
	is[driver.Validator]("Validator"),
	is[driver.NamedValueChecker]("NamedValueChecker"),
	is[driver.Result]("Result"),
	is[driver.Stmt]("Stmt"),
	is[driver.StmtExecContext]("StmtExecContext"),
	is[driver.StmtQueryContext]("StmtQueryContext"),
	is[driver.ColumnConverter]("ColumnConverter"),
	is[driver.Rows]("Rows"),
	is[driver.RowsNextResultSet]("RowsNextResultSet"),
	is[driver.RowsColumnTypeScanType]("RowsColumnTypeScanType"),
	is[driver.RowsColumnTypeDatabaseTypeName]("RowsColumnTypeDatabaseTypeName"),
	is[driver.RowsColumnTypeLength]("RowsColumnTypeLength"),
	is[driver.RowsColumnTypeNullable]("RowsColumnTypeNullable"),
	is[driver.RowsColumnTypePrecisionScale]("RowsColumnTypePrecisionScale"),
	is[driver.Tx]("Tx"),
	is[driver.ValueConverter]("ValueConverter"),
	is[driver.Valuer]("Valuer"),
	is[RawConn]("RawConn"),
	is[fmt.Stringer]("fmt.Stringer"),
	is[error]("error"),
}

func names(s ...string) []string { return s }

// expected lists, per profile and kind of value, exactly the interfaces of
// universe the value must implement. io.Closer is implied by Conn, Stmt and
// Rows.
func expected(p Profile, kind string) []string {
	switch kind {
	case "driver":
		if p == Legacy {
			return names("Driver")
		}
		return names("Driver", "DriverContext")
	case "connector":
		if p == Legacy {
			return names("Connector")
		}
		return names("Connector", "io.Closer")
	case "conn":
		switch p {
		case Legacy:
			return names("Conn", "io.Closer", "RawConn")
		case ResetterOnly:
			return names("Conn", "io.Closer", "RawConn", "Pinger", "ExecerContext", "QueryerContext",
				"ConnPrepareContext", "ConnBeginTx", "SessionResetter", "NamedValueChecker")
		default:
			return names("Conn", "io.Closer", "RawConn", "Pinger", "ExecerContext", "QueryerContext",
				"ConnPrepareContext", "ConnBeginTx", "SessionResetter", "Validator", "NamedValueChecker")
		}
	case "stmt":
		if p == Legacy {
			return names("Stmt", "io.Closer")
		}
		return names("Stmt", "io.Closer", "StmtExecContext", "StmtQueryContext", "NamedValueChecker", "ColumnConverter")
	case "rows":
		if p == Legacy {
			return names("Rows", "io.Closer")
		}
		return names("Rows", "io.Closer", "RowsNextResultSet", "RowsColumnTypeScanType",
			"RowsColumnTypeDatabaseTypeName", "RowsColumnTypeLength", "RowsColumnTypeNullable",
			"RowsColumnTypePrecisionScale")
	case "result":
		return names("Result")
	case "tx":
		return names("Tx")
	case "valueconverter":
		return names("ValueConverter")
	}
	panic("unknown kind " + kind)
}

// checkInterfaces asserts that v implements every interface expected for
// (p, kind) and no other interface of universe.
func checkInterfaces(t *testing.T, p Profile, kind, label string, v any) {
	t.Helper()
	want := expected(p, kind)
	for _, name := range want {
		if !slices.ContainsFunc(universe, func(i iface) bool { return i.name == name }) {
			t.Fatalf("test bug: %s not in universe", name)
		}
	}
	for _, i := range universe {
		w := slices.Contains(want, i.name)
		if got := i.has(v); got != w {
			t.Errorf("%s %s (%T): implements %s = %v, want %v", p, label, v, i.name, got, w)
		}
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func TestInterfaceSets(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		if d.Profile() != p {
			t.Fatalf("Profile() = %v", d.Profile())
		}
		drv := d.Driver()
		checkInterfaces(t, p, "driver", "Driver()", drv)
		connector := d.Connector()
		checkInterfaces(t, p, "connector", "Connector()", connector)
		checkInterfaces(t, p, "driver", "Connector().Driver()", connector.Driver())
		if connector.Driver() != drv {
			t.Errorf("Connector().Driver() is not Driver()")
		}
		if dc, ok := drv.(driver.DriverContext); ok {
			c := must[driver.Connector](t)(dc.OpenConnector("x"))
			checkInterfaces(t, p, "connector", "OpenConnector()", c)
		}

		conns := map[string]driver.Conn{
			"Connect": must[driver.Conn](t)(connector.Connect(ctx)),
			"Open":    must[driver.Conn](t)(drv.Open("x")),
		}
		for how, conn := range conns {
			checkInterfaces(t, p, "conn", "conn from "+how, conn)
		}
		conn := conns["Connect"]
		defer conn.Close()

		stmts := map[string]driver.Stmt{"Prepare": must[driver.Stmt](t)(conn.Prepare("MULTI"))}
		if pc, ok := conn.(driver.ConnPrepareContext); ok {
			stmts["PrepareContext"] = must[driver.Stmt](t)(pc.PrepareContext(ctx, "MULTI"))
		}
		for how, stmt := range stmts {
			checkInterfaces(t, p, "stmt", "stmt from "+how, stmt)
			if stmt.NumInput() != -1 {
				t.Errorf("NumInput = %d, want -1", stmt.NumInput())
			}
			rows := must[driver.Rows](t)(stmt.Query(nil))
			checkInterfaces(t, p, "rows", "rows from "+how+"+Query", rows)
			rows.Close()
			res := must[driver.Result](t)(stmt.Exec(nil))
			checkInterfaces(t, p, "result", "result from "+how+"+Exec", res)
			if cc, ok := stmt.(driver.ColumnConverter); ok {
				checkInterfaces(t, p, "valueconverter", "ColumnConverter(0)", cc.ColumnConverter(0))
			}
			if sc, ok := stmt.(driver.StmtQueryContext); ok {
				rows := must[driver.Rows](t)(sc.QueryContext(ctx, nil))
				checkInterfaces(t, p, "rows", "rows from "+how+"+QueryContext", rows)
				rows.Close()
			}
			if sc, ok := stmt.(driver.StmtExecContext); ok {
				res := must[driver.Result](t)(sc.ExecContext(ctx, nil))
				checkInterfaces(t, p, "result", "result from "+how+"+ExecContext", res)
			}
			stmt.Close()
		}
		if qc, ok := conn.(driver.QueryerContext); ok {
			rows := must[driver.Rows](t)(qc.QueryContext(ctx, "MULTI", nil))
			checkInterfaces(t, p, "rows", "rows from conn QueryContext", rows)
			rows.Close()
		}
		if ec, ok := conn.(driver.ExecerContext); ok {
			res := must[driver.Result](t)(ec.ExecContext(ctx, "INSERT", nil))
			checkInterfaces(t, p, "result", "result from conn ExecContext", res)
		}

		tx := must[driver.Tx](t)(conn.Begin())
		checkInterfaces(t, p, "tx", "tx from Begin", tx)
		tx.Rollback()
		if bt, ok := conn.(driver.ConnBeginTx); ok {
			tx := must[driver.Tx](t)(bt.BeginTx(ctx, driver.TxOptions{}))
			checkInterfaces(t, p, "tx", "tx from BeginTx", tx)
			tx.Rollback()
		}

		// The conn database/sql hands out through Raw is the same value.
		db := openDB(t, d, false)
		c := must[*sql.Conn](t)(db.Conn(ctx))
		defer c.Close()
		if err := c.Raw(func(dc any) error {
			checkInterfaces(t, p, "conn", "conn from sql.Conn.Raw", dc)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDatabaseSQLSeesInterfaces checks the interface sets indirectly,
// through behaviour of database/sql that depends on them.
func TestDatabaseSQLSeesInterfaces(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		db := openDB(t, d, false)
		db.SetMaxOpenConns(1)
		for range 3 {
			if _, err := db.Exec("INSERT"); err != nil {
				t.Fatal(err)
			}
		}
		// Legacy has no Execer, so database/sql prepares every Exec.
		wantPrepares := int64(0)
		if p == Legacy {
			wantPrepares = 3
		}
		if got := d.Prepares(); got != wantPrepares {
			t.Errorf("Prepares = %d, want %d", got, wantPrepares)
		}
		if got := d.ResetSessions() > 0; got != (p != Legacy) {
			t.Errorf("ResetSessions = %d", d.ResetSessions())
		}
		if got := d.IsValids() > 0; got != (p == Full) {
			t.Errorf("IsValids = %d", d.IsValids())
		}
	})
}

// ---- query language ----

func scanAll(t *testing.T, rows *sql.Rows) [][]any {
	t.Helper()
	cols := must[[]string](t)(rows.Columns())
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSelectRows(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		for _, viaRegister := range []bool{false, true} {
			d := New(p)
			db := openDB(t, d, viaRegister)
			rows := must[*sql.Rows](t)(db.Query("SELECT ROWS 3"))
			if cols := must[[]string](t)(rows.Columns()); !slices.Equal(cols, []string{"id", "name"}) {
				t.Errorf("columns = %v", cols)
			}
			got := scanAll(t, rows)
			rows.Close()
			want := [][]any{{int64(1), "row1"}, {int64(2), "row2"}, {int64(3), "row3"}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rows = %#v, want %#v", got, want)
			}

			rows = must[*sql.Rows](t)(db.Query("SELECT ROWS 0"))
			if got := scanAll(t, rows); len(got) != 0 {
				t.Errorf("SELECT ROWS 0 returned %v", got)
			}
			rows.Close()

			var id int64
			var name string
			if err := db.QueryRow("SELECT ROWS 5").Scan(&id, &name); err != nil || id != 1 || name != "row1" {
				t.Errorf("QueryRow = %d %q %v", id, name, err)
			}
			if db.Driver() != d.Driver() {
				t.Errorf("db.Driver() = %T, want d.Driver()", db.Driver())
			}
		}
	})
}

func TestMalformed(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		for _, q := range []string{"SELECT ROWS x", "SELECT ROWS -1", "SELECT ROWS 1 2", "SELECT ROWS", "SLEEP", "SLEEP x", "ERROR"} {
			if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "malformed") {
				t.Errorf("Exec(%q) error = %v, want malformed", q, err)
			}
		}
		// Not a recognised form: the default.
		for _, q := range []string{"select rows 3", "SELECT  ROWS 3", "SELECT ARGS ", "MULTI X", "BADCONN TWICE"} {
			rows, err := db.Query(q)
			if err != nil {
				t.Fatalf("Query(%q): %v", q, err)
			}
			if cols := must[[]string](t)(rows.Columns()); !slices.Equal(cols, []string{"ok"}) {
				t.Errorf("Query(%q) columns = %v, want [ok]", q, cols)
			}
			rows.Close()
		}
	})
}

func TestSelectArgs(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
		rows := must[*sql.Rows](t)(db.Query("SELECT ARGS", 1, "two", []byte("three"), 4.5, true, nil, now))
		defer rows.Close()
		cols := must[[]string](t)(rows.Columns())
		if !slices.Equal(cols, []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7"}) {
			t.Errorf("columns = %v", cols)
		}
		got := scanAll(t, rows)
		want := [][]any{{int64(1), "two", []byte("three"), 4.5, true, nil, now}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("rows = %#v, want %#v", got, want)
		}

		rows2 := must[*sql.Rows](t)(db.Query("SELECT ARGS"))
		defer rows2.Close()
		if cols := must[[]string](t)(rows2.Columns()); len(cols) != 0 {
			t.Errorf("no-arg columns = %v", cols)
		}
		if got := scanAll(t, rows2); len(got) != 1 {
			t.Errorf("no-arg SELECT ARGS returned %d rows, want 1", len(got))
		}
	})
}

func TestMulti(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		rows := must[*sql.Rows](t)(db.Query("MULTI"))
		defer rows.Close()
		if got := scanAll(t, rows); !reflect.DeepEqual(got, [][]any{{int64(1), "row1"}}) {
			t.Errorf("first set = %#v", got)
		}
		more := rows.NextResultSet()
		if more != (p != Legacy) {
			t.Fatalf("NextResultSet = %v", more)
		}
		if !more {
			return
		}
		if cols := must[[]string](t)(rows.Columns()); !slices.Equal(cols, []string{"second"}) {
			t.Errorf("second columns = %v", cols)
		}
		if got := scanAll(t, rows); !reflect.DeepEqual(got, [][]any{{int64(2)}}) {
			t.Errorf("second set = %#v", got)
		}
		if rows.NextResultSet() {
			t.Errorf("third result set")
		}
	})
}

func TestError(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		const q = "ERROR 23505 duplicate key value"
		check := func(how string, err error) {
			t.Helper()
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("%s: error %v (%T) is not *Error", how, err, err)
			}
			if fe.Code != "23505" || fe.Message != "duplicate key value" {
				t.Errorf("%s: %#v", how, fe)
			}
			if err.Error() != "fakedb: 23505: duplicate key value" {
				t.Errorf("%s: Error() = %q", how, err.Error())
			}
		}
		_, err := db.Exec(q)
		check("Exec", err)
		_, err = db.Query(q)
		check("Query", err)
		err = db.QueryRow(q).Scan()
		check("QueryRow", err)
		stmt := must[*sql.Stmt](t)(db.Prepare(q)) // Prepare never fails.
		defer stmt.Close()
		_, err = stmt.Exec()
		check("Stmt.Exec", err)
		_, err = stmt.Query()
		check("Stmt.Query", err)

		var fe *Error
		if _, err := db.Exec("ERROR 42"); !errors.As(err, &fe) || fe.Code != "42" || fe.Message != "" {
			t.Errorf("ERROR 42: %v", err)
		}
	})
}

func TestDefault(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		for _, args := range [][]any{nil, {1}, {1, "x", 2.5}} {
			res := must[sql.Result](t)(db.Exec("INSERT INTO t VALUES (?)", args...))
			if id := must[int64](t)(res.LastInsertId()); id != 42 {
				t.Errorf("LastInsertId = %d", id)
			}
			if n := must[int64](t)(res.RowsAffected()); n != int64(len(args)) {
				t.Errorf("RowsAffected = %d, want %d", n, len(args))
			}
		}
		rows := must[*sql.Rows](t)(db.Query("UPDATE t SET x = 1"))
		defer rows.Close()
		if cols := must[[]string](t)(rows.Columns()); !slices.Equal(cols, []string{"ok"}) {
			t.Errorf("columns = %v", cols)
		}
		if got := scanAll(t, rows); len(got) != 0 {
			t.Errorf("rows = %v", got)
		}
		// Query forms through Exec return the default result.
		res := must[sql.Result](t)(db.Exec("SELECT ROWS 3", 1))
		if n := must[int64](t)(res.RowsAffected()); n != 1 {
			t.Errorf("RowsAffected = %d", n)
		}
	})
}

func TestSleep(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		start := time.Now()
		if _, err := db.Exec("SLEEP 30"); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 30*time.Millisecond {
			t.Errorf("SLEEP 30 took %v", el)
		}
		rows := must[*sql.Rows](t)(db.Query("SLEEP 1"))
		rows.Close()
		if p == Legacy {
			return // no context methods: the driver cannot be interrupted
		}
		for _, how := range []string{"ExecContext", "QueryContext", "Stmt.ExecContext", "Stmt.QueryContext"} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			start := time.Now()
			var err error
			switch how {
			case "ExecContext":
				_, err = db.ExecContext(ctx, "SLEEP 10000")
			case "QueryContext":
				_, err = db.QueryContext(ctx, "SLEEP 10000")
			default:
				stmt := must[*sql.Stmt](t)(db.Prepare("SLEEP 10000"))
				if how == "Stmt.ExecContext" {
					_, err = stmt.ExecContext(ctx)
				} else {
					_, err = stmt.QueryContext(ctx)
				}
				stmt.Close()
			}
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: error = %v, want DeadlineExceeded", how, err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("%s: took %v", how, el)
			}
		}
	})
}

func TestSleepDirectCancel(t *testing.T) {
	conn := must[driver.Conn](t)(New(Full).Connector().Connect(context.Background()))
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := conn.(driver.ExecerContext).ExecContext(ctx, "SLEEP 10000", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want Canceled", err)
	}
}

// ---- bad conns ----

func TestBadConn(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		db := openDB(t, d, false)
		if _, err := db.Exec("BADCONN"); !errors.Is(err, driver.ErrBadConn) {
			t.Errorf("Exec error = %v, want ErrBadConn", err)
		}
		if _, err := db.Query("BADCONN"); !errors.Is(err, driver.ErrBadConn) {
			t.Errorf("Query error = %v, want ErrBadConn", err)
		}
		// database/sql retried on fresh conns and discarded the broken ones.
		if d.Opens() < 2 || d.OpenConns() != 0 || d.ConnCloses() != d.Opens() {
			t.Errorf("Opens=%d OpenConns=%d ConnCloses=%d", d.Opens(), d.OpenConns(), d.ConnCloses())
		}
	})
}

func TestBadConnMarksBroken(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		conn := must[driver.Conn](t)(d.Connector().Connect(ctx))
		defer conn.Close()
		stmt := must[driver.Stmt](t)(conn.Prepare("BADCONN"))
		if _, err := stmt.Exec(nil); !errors.Is(err, driver.ErrBadConn) {
			t.Fatalf("Exec error = %v", err)
		}
		stmt.Close()
		// Every later operation fails with ErrBadConn.
		stmt = must[driver.Stmt](t)(conn.Prepare("SELECT ROWS 1"))
		if _, err := stmt.Query(nil); !errors.Is(err, driver.ErrBadConn) {
			t.Errorf("Query on broken conn: %v", err)
		}
		stmt.Close()
		if p == Legacy {
			return
		}
		if v, ok := conn.(driver.Validator); ok && v.IsValid() {
			t.Errorf("IsValid = true on a broken conn")
		}
		if err := conn.(driver.SessionResetter).ResetSession(ctx); !errors.Is(err, driver.ErrBadConn) {
			t.Errorf("ResetSession = %v", err)
		}
		if err := conn.(driver.Pinger).Ping(ctx); !errors.Is(err, driver.ErrBadConn) {
			t.Errorf("Ping = %v", err)
		}
		if _, err := conn.(driver.ExecerContext).ExecContext(ctx, "INSERT", nil); !errors.Is(err, driver.ErrBadConn) {
			t.Errorf("ExecContext = %v", err)
		}
		if _, err := conn.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{}); !errors.Is(err, driver.ErrBadConn) {
			t.Errorf("BeginTx = %v", err)
		}
		// A healthy conn is valid and resets fine.
		ok := must[driver.Conn](t)(d.Connector().Connect(ctx))
		defer ok.Close()
		if v, isV := ok.(driver.Validator); isV && !v.IsValid() {
			t.Errorf("IsValid = false on a healthy conn")
		}
		if err := ok.(driver.SessionResetter).ResetSession(ctx); err != nil {
			t.Errorf("ResetSession = %v", err)
		}
		if err := ok.(driver.Pinger).Ping(ctx); err != nil {
			t.Errorf("Ping = %v", err)
		}
	})
}

func TestBadConnOnceRetry(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		for _, how := range []string{"Exec", "Query"} {
			d := New(p)
			db := openDB(t, d, false)
			var err error
			if how == "Exec" {
				_, err = db.Exec("BADCONN ONCE")
			} else {
				var rows *sql.Rows
				rows, err = db.Query("BADCONN ONCE")
				if err == nil {
					rows.Close()
				}
			}
			if err != nil {
				t.Fatalf("%s: %v (database/sql should have retried)", how, err)
			}
			if d.Opens() != 2 || d.ConnCloses() != 1 || d.OpenConns() != 1 {
				t.Errorf("%s: Opens=%d ConnCloses=%d OpenConns=%d, want 2 1 1", how, d.Opens(), d.ConnCloses(), d.OpenConns())
			}
			// Only the first execution per Driver fails.
			if _, err := db.Exec("BADCONN ONCE"); err != nil {
				t.Errorf("%s: second: %v", how, err)
			}
			if d.Opens() != 2 {
				t.Errorf("%s: Opens after second = %d", how, d.Opens())
			}
		}
	})
}

// ---- conversions ----

func selectArgs(t *testing.T, q interface {
	Query(args ...any) (*sql.Rows, error)
}, args ...any) []any {
	t.Helper()
	rows, err := q.Query(args...)
	if err != nil {
		t.Fatalf("SELECT ARGS: %v", err)
	}
	defer rows.Close()
	got := scanAll(t, rows)
	if len(got) != 1 {
		t.Fatalf("SELECT ARGS returned %d rows", len(got))
	}
	return got[0]
}

type dbQuery struct{ db *sql.DB }

func (q dbQuery) Query(args ...any) (*sql.Rows, error) { return q.db.Query("SELECT ARGS", args...) }

type txQuery struct{ tx *sql.Tx }

func (q txQuery) Query(args ...any) (*sql.Rows, error) { return q.tx.Query("SELECT ARGS", args...) }

func TestConversions(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		stmt := must[*sql.Stmt](t)(db.Prepare("SELECT ARGS"))
		defer stmt.Close()

		if p == Legacy {
			for how, q := range map[string]interface {
				Query(...any) (*sql.Rows, error)
			}{"db": dbQuery{db}, "stmt": stmt} {
				_, err := q.Query(Point{1, 2})
				if err == nil || !strings.Contains(err.Error(), "sql: converting argument $1 type: unsupported type fakedb.Point") {
					t.Errorf("%s: Point error = %v", how, err)
				}
				got := selectArgs(t, q, Celsius(21.5), 3)
				if want := []any{21.5, int64(3)}; !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %#v, want %#v", how, got, want)
				}
			}
			return
		}

		// Conn path: conn NamedValueChecker, then the default converter.
		got := selectArgs(t, dbQuery{db}, Point{1, 2}, Celsius(21.5), 3)
		if want := []any{"conn:(1,2)", 21.5, int64(3)}; !reflect.DeepEqual(got, want) {
			t.Errorf("db: got %#v, want %#v", got, want)
		}
		tx := must[*sql.Tx](t)(db.Begin())
		got = selectArgs(t, txQuery{tx}, Point{3, 4})
		if want := []any{"conn:(3,4)"}; !reflect.DeepEqual(got, want) {
			t.Errorf("tx: got %#v, want %#v", got, want)
		}
		tx.Rollback()

		// Stmt path: stmt NamedValueChecker, then ColumnConverter, then default.
		got = selectArgs(t, stmt, Point{1, 2}, Celsius(21.5), 3, "s")
		if want := []any{"stmt:(1,2)", "21.5C", int64(3), "s"}; !reflect.DeepEqual(got, want) {
			t.Errorf("stmt: got %#v, want %#v", got, want)
		}

		// The ColumnConverter rejects what the default converter rejects.
		if _, err := stmt.Query(struct{}{}); err == nil {
			t.Errorf("stmt: struct{} accepted")
		}
	})
}

func TestConvertersDirect(t *testing.T) {
	conn := must[driver.Conn](t)(New(Full).Connector().Connect(context.Background()))
	defer conn.Close()
	nv := driver.NamedValue{Ordinal: 1, Value: Point{5, -6}}
	if err := conn.(driver.NamedValueChecker).CheckNamedValue(&nv); err != nil || nv.Value != "conn:(5,-6)" {
		t.Errorf("conn CheckNamedValue = %v, %v", nv.Value, err)
	}
	nv = driver.NamedValue{Ordinal: 1, Value: Celsius(1)}
	if err := conn.(driver.NamedValueChecker).CheckNamedValue(&nv); err != driver.ErrSkip {
		t.Errorf("conn CheckNamedValue(Celsius) = %v, want ErrSkip", err)
	}
	stmt := must[driver.Stmt](t)(conn.Prepare("SELECT ARGS"))
	defer stmt.Close()
	nv = driver.NamedValue{Ordinal: 1, Value: Point{7, 8}}
	if err := stmt.(driver.NamedValueChecker).CheckNamedValue(&nv); err != nil || nv.Value != "stmt:(7,8)" {
		t.Errorf("stmt CheckNamedValue = %v, %v", nv.Value, err)
	}
	nv = driver.NamedValue{Ordinal: 1, Value: Celsius(1)}
	if err := stmt.(driver.NamedValueChecker).CheckNamedValue(&nv); err != driver.ErrSkip {
		t.Errorf("stmt CheckNamedValue(Celsius) = %v, want ErrSkip", err)
	}
	vc := stmt.(driver.ColumnConverter).ColumnConverter(3)
	for in, want := range map[any]driver.Value{Celsius(-3): "-3C", Celsius(1e21): "1e+21C", 7: int64(7), "x": "x"} {
		if got, err := vc.ConvertValue(in); err != nil || got != want {
			t.Errorf("ConvertValue(%v) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	if _, err := vc.ConvertValue(Point{}); err == nil {
		t.Errorf("ConvertValue(Point) succeeded")
	}
}

// ---- transactions ----

func TestIsolation(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		db := openDB(t, d, false)
		if p == Legacy {
			tx := must[*sql.Tx](t)(db.Begin())
			if got := d.LastTxOptions(); got != (driver.TxOptions{}) {
				t.Errorf("LastTxOptions = %+v", got)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			// database/sql itself refuses non-default options for Begin-only drivers.
			_, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
			if err == nil || !strings.Contains(err.Error(), "non-default isolation level") {
				t.Errorf("BeginTx(Serializable) = %v", err)
			}
			if d.Begins() != 1 || d.Commits() != 1 {
				t.Errorf("Begins=%d Commits=%d", d.Begins(), d.Commits())
			}
			return
		}
		for _, lvl := range []sql.IsolationLevel{sql.LevelDefault, sql.LevelReadCommitted, sql.LevelSerializable} {
			tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: lvl, ReadOnly: true})
			if err != nil {
				t.Fatalf("%v: %v", lvl, err)
			}
			want := driver.TxOptions{Isolation: driver.IsolationLevel(lvl), ReadOnly: true}
			if got := d.LastTxOptions(); got != want {
				t.Errorf("LastTxOptions = %+v, want %+v", got, want)
			}
			tx.Rollback()
		}
		for _, lvl := range []sql.IsolationLevel{sql.LevelReadUncommitted, sql.LevelWriteCommitted, sql.LevelRepeatableRead,
			sql.LevelSnapshot, sql.LevelLinearizable} {
			_, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: lvl})
			want := fmt.Sprintf("fakedb: isolation level %d not supported", lvl)
			if err == nil || err.Error() != want {
				t.Errorf("%v: error = %v, want %q", lvl, err, want)
			}
			if got := d.LastTxOptions(); got.Isolation != driver.IsolationLevel(lvl) {
				t.Errorf("LastTxOptions = %+v", got)
			}
		}
		if d.Begins() != 8 || d.Rollbacks() != 3 || d.Commits() != 0 {
			t.Errorf("Begins=%d Rollbacks=%d Commits=%d", d.Begins(), d.Rollbacks(), d.Commits())
		}
	})
}

func TestTxAfterClose(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		conn := must[driver.Conn](t)(d.Connector().Connect(context.Background()))
		tx := must[driver.Tx](t)(conn.Begin())
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err == nil {
			t.Errorf("second Commit succeeded")
		}
		if err := tx.Rollback(); err == nil {
			t.Errorf("Rollback after Commit succeeded")
		}
		tx = must[driver.Tx](t)(conn.Begin())
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err == nil {
			t.Errorf("second Rollback succeeded")
		}
		tx = must[driver.Tx](t)(conn.Begin())
		conn.Close()
		if err := tx.Commit(); err == nil {
			t.Errorf("Commit after conn Close succeeded")
		}
		if d.Begins() != 3 || d.Commits() != 3 || d.Rollbacks() != 3 {
			t.Errorf("Begins=%d Commits=%d Rollbacks=%d", d.Begins(), d.Commits(), d.Rollbacks())
		}
	})
}

// ---- observation ----

func TestCounters(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		for _, viaRegister := range []bool{false, true} {
			d := New(p)
			db := openDB(t, d, viaRegister)
			db.SetMaxOpenConns(1)
			if _, err := db.Exec("INSERT"); err != nil {
				t.Fatal(err)
			}
			rows := must[*sql.Rows](t)(db.Query("SELECT ROWS 2"))
			scanAll(t, rows)
			rows.Close()
			stmt := must[*sql.Stmt](t)(db.Prepare("SELECT ROWS 1"))
			var id int64
			var name string
			if err := stmt.QueryRow().Scan(&id, &name); err != nil {
				t.Fatal(err)
			}
			stmt.Close()
			tx := must[*sql.Tx](t)(db.Begin())
			if _, err := tx.Exec("INSERT"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			tx = must[*sql.Tx](t)(db.Begin())
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if d.OpenConns() != 1 {
				t.Errorf("OpenConns before Close = %d", d.OpenConns())
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			wantPrepares := int64(1)
			wantConnectorCloses := int64(1)
			if p == Legacy {
				wantPrepares = 4 // Exec, Query, Prepare and tx.Exec all prepare
				wantConnectorCloses = 0
			}
			got := map[string]int64{
				"Opens": d.Opens(), "ConnCloses": d.ConnCloses(), "OpenConns": d.OpenConns(),
				"Begins": d.Begins(), "Commits": d.Commits(), "Rollbacks": d.Rollbacks(),
				"Prepares": d.Prepares(), "StmtCloses": d.StmtCloses(), "RowsCloses": d.RowsCloses(),
				"ConnectorCloses": d.ConnectorCloses(),
			}
			want := map[string]int64{
				"Opens": 1, "ConnCloses": 1, "OpenConns": 0,
				"Begins": 2, "Commits": 1, "Rollbacks": 1,
				"Prepares": wantPrepares, "StmtCloses": wantPrepares, "RowsCloses": 2,
				"ConnectorCloses": wantConnectorCloses,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("viaRegister=%v: counters = %v, want %v", viaRegister, got, want)
			}
			if (d.ResetSessions() > 0) != (p != Legacy) {
				t.Errorf("ResetSessions = %d", d.ResetSessions())
			}
			if (d.IsValids() > 0) != (p == Full) {
				t.Errorf("IsValids = %d", d.IsValids())
			}
		}
	})
}

func TestRawConnIDs(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		db := openDB(t, d, false)
		rawID := func(c *sql.Conn) int64 {
			var id int64
			if err := c.Raw(func(dc any) error {
				rc, ok := dc.(RawConn)
				if !ok {
					return fmt.Errorf("%T is not a RawConn", dc)
				}
				id = rc.FakeConnID()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return id
		}
		c1 := must[*sql.Conn](t)(db.Conn(ctx))
		c2 := must[*sql.Conn](t)(db.Conn(ctx))
		id1, id2 := rawID(c1), rawID(c2)
		if id1 <= 0 || id2 <= id1 {
			t.Errorf("ids %d, %d: want positive and increasing", id1, id2)
		}
		if again := rawID(c1); again != id1 {
			t.Errorf("same conn, id %d then %d", id1, again)
		}
		c1.Close()
		c2.Close()
		if d.Opens() != 2 {
			t.Errorf("Opens = %d", d.Opens())
		}
	})
}

func TestConnectHonoursContext(t *testing.T) {
	for _, p := range []Profile{Full, ResetterOnly} {
		d := New(p)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := d.Connector().Connect(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%v: Connect = %v, want Canceled", p, err)
		}
		if d.Opens() != 0 || d.OpenConns() != 0 {
			t.Errorf("%v: Opens=%d OpenConns=%d", p, d.Opens(), d.OpenConns())
		}
		c := must[driver.Conn](t)(d.Connector().Connect(context.Background()))
		if d.Opens() != 1 || d.OpenConns() != 1 {
			t.Errorf("%v: Opens=%d OpenConns=%d", p, d.Opens(), d.OpenConns())
		}
		c.Close()
		c.Close()
		if d.ConnCloses() != 2 || d.OpenConns() != 0 {
			t.Errorf("%v: ConnCloses=%d OpenConns=%d after double close", p, d.ConnCloses(), d.OpenConns())
		}
	}
}

func TestColumnTypes(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		db := openDB(t, New(p), false)
		rows := must[*sql.Rows](t)(db.Query("MULTI"))
		defer rows.Close()
		type colType struct {
			Name, DBType     string
			Scan             reflect.Type
			Length           int64
			LengthOK         bool
			Nullable, NullOK bool
			Prec, Scale      int64
			DecimalOK        bool
		}
		describe := func() []colType {
			cts := must[[]*sql.ColumnType](t)(rows.ColumnTypes())
			var out []colType
			for _, ct := range cts {
				c := colType{Name: ct.Name(), DBType: ct.DatabaseTypeName(), Scan: ct.ScanType()}
				c.Length, c.LengthOK = ct.Length()
				c.Nullable, c.NullOK = ct.Nullable()
				c.Prec, c.Scale, c.DecimalOK = ct.DecimalSize()
				out = append(out, c)
			}
			return out
		}
		anyType := reflect.TypeFor[any]()
		got := describe()
		var want []colType
		if p == Legacy {
			want = []colType{{Name: "id", Scan: anyType}, {Name: "name", Scan: anyType}}
		} else {
			want = []colType{
				{Name: "id", DBType: "INTEGER", Scan: reflect.TypeFor[int64](), NullOK: true},
				{Name: "name", DBType: "TEXT", Scan: reflect.TypeFor[string](), Length: 255, LengthOK: true, Nullable: true, NullOK: true},
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("first set: %+v, want %+v", got, want)
		}
		if p == Legacy {
			return
		}
		scanAll(t, rows)
		if !rows.NextResultSet() {
			t.Fatal("no second result set")
		}
		want = []colType{{Name: "second", Scan: anyType, Nullable: true, NullOK: true}}
		if got := describe(); !reflect.DeepEqual(got, want) {
			t.Errorf("second set: %+v, want %+v", got, want)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	forEachProfile(t, func(t *testing.T, p Profile) {
		d := New(p)
		db := openDB(t, d, false)
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(2)
		const workers, iters = 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := range iters {
					if _, err := db.Exec("INSERT", w, i); err != nil {
						errs <- err
						return
					}
					rows, err := db.Query("SELECT ROWS 3")
					if err != nil {
						errs <- err
						return
					}
					for rows.Next() {
					}
					rows.Close()
					tx, err := db.Begin()
					if err != nil {
						errs <- err
						return
					}
					if i%2 == 0 {
						err = tx.Commit()
					} else {
						err = tx.Rollback()
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		db.Close()
		n := int64(workers * iters)
		if d.Begins() != n || d.Commits() != n/2 || d.Rollbacks() != n/2 || d.RowsCloses() != n {
			t.Errorf("Begins=%d Commits=%d Rollbacks=%d RowsCloses=%d", d.Begins(), d.Commits(), d.Rollbacks(), d.RowsCloses())
		}
		if d.OpenConns() != 0 || d.Opens() != d.ConnCloses() || d.Opens() > 4*workers*iters {
			t.Errorf("Opens=%d ConnCloses=%d OpenConns=%d", d.Opens(), d.ConnCloses(), d.OpenConns())
		}
	})
}

func TestNewUnknownProfilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(Profile(99)) did not panic")
		}
	}()
	New(Profile(99))
}
