package driver_test

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ngrok/sqlmw"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
)

// The conformance suite runs one script of database/sql calls against a
// fake driver directly and through sqlwatch, and requires the two
// transcripts — every value, error, column type and driver-side counter —
// to be identical.

// transcript records what the application saw.
type transcript struct{ lines []string }

func (tr *transcript) add(format string, args ...any) {
	tr.lines = append(tr.lines, fmt.Sprintf(format, args...))
}

func (tr *transcript) err(what string, err error) {
	var fe *fakedb.Error
	tr.add("%s: err=%v errors.As(*fakedb.Error)=%v errors.Is(ErrBadConn)=%v", what, err, errors.As(err, &fe), errors.Is(err, sqldriver.ErrBadConn))
}

// script is the sequence of calls both runs make.
func script(t *testing.T, db *sql.DB, fd *fakedb.Driver) []string {
	t.Helper()
	tr := &transcript{}
	ctx := context.Background()
	db.SetMaxOpenConns(2)

	res, err := db.ExecContext(ctx, "INSERT x", 1, "two")
	tr.err("exec", err)
	if err == nil {
		id, err1 := res.LastInsertId()
		n, err2 := res.RowsAffected()
		tr.add("result: %d %v %d %v", id, err1, n, err2)
	}

	queryAll := func(what string, q string, args ...any) {
		rows, err := db.QueryContext(ctx, q, args...)
		tr.err(what, err)
		if err != nil {
			return
		}
		defer rows.Close()
		for set := 0; ; set++ {
			cols, _ := rows.Columns()
			types, _ := rows.ColumnTypes()
			for _, ct := range types {
				l, okl := ct.Length()
				nl, okn := ct.Nullable()
				p, s, okp := ct.DecimalSize()
				tr.add("%s set %d col %s: scan=%v db=%q len=%d,%v null=%v,%v dec=%d,%d,%v",
					what, set, ct.Name(), ct.ScanType(), ct.DatabaseTypeName(), l, okl, nl, okn, p, s, okp)
			}
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				tr.err(what+" scan", rows.Scan(ptrs...))
				tr.add("%s row %v", what, vals)
			}
			if !rows.NextResultSet() {
				break
			}
		}
		tr.err(what+" rows.Err", rows.Err())
	}
	queryAll("rows", "SELECT ROWS 3")
	queryAll("multi", "MULTI")
	queryAll("point", "SELECT ARGS", fakedb.Point{X: 1, Y: 2})
	queryAll("celsius", "SELECT ARGS", fakedb.Celsius(21.5))
	queryAll("named", "SELECT ARGS", sql.Named("a", 1))
	queryAll("error", "ERROR 1213 Deadlock found")

	_, err = db.ExecContext(ctx, "ERROR 1205 Lock wait timeout")
	tr.err("exec error", err)
	_, err = db.ExecContext(ctx, "BADCONN ONCE")
	tr.err("exec badconn once (retried)", err)
	_, err = db.ExecContext(ctx, "SLEEP 10")
	tr.add("exec sleep without deadline: %v", err)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = db.ExecContext(short, "SLEEP 1000")
	cancel()
	tr.err("exec sleep past deadline", err)

	st, err := db.PrepareContext(ctx, "SELECT ARGS")
	tr.err("prepare", err)
	if err == nil {
		for _, arg := range []any{fakedb.Point{X: 3, Y: 4}, fakedb.Celsius(-1), int64(7)} {
			var got any
			err := st.QueryRowContext(ctx, arg).Scan(&got)
			tr.add("stmt arg %#v: %v %v", arg, got, err)
		}
		tr.err("stmt close", st.Close())
	}

	for _, opts := range []*sql.TxOptions{
		nil,
		{Isolation: sql.LevelReadCommitted},
		{Isolation: sql.LevelSerializable, ReadOnly: true},
		{Isolation: sql.LevelLinearizable},
		{ReadOnly: true},
	} {
		tx, err := db.BeginTx(ctx, opts)
		tr.err(fmt.Sprintf("begin %+v", opts), err)
		if err == nil {
			tr.add("driver saw %+v", fd.LastTxOptions())
			_, err := tx.ExecContext(ctx, "UPDATE y")
			tr.err("tx exec", err)
			tr.err("commit", tx.Commit())
			tr.err("commit again", tx.Commit())
		}
	}

	// A tx rolled back by its context: database/sql keeps or discards the
	// conn depending on SessionResetter and Validator.
	cctx, ccancel := context.WithCancel(ctx)
	tx, err := db.BeginTx(cctx, nil)
	tr.err("begin cancellable", err)
	if err == nil {
		ccancel()
		waitFor(t, func() bool { return db.Stats().InUse == 0 })
		tr.err("rollback after cancel", tx.Rollback())
	}
	ccancel()

	conn, err := db.Conn(ctx)
	tr.err("conn", err)
	if err == nil {
		err := conn.Raw(func(dc any) error {
			_, ok := driver.Unwrap(dc).(fakedb.RawConn)
			tr.add("raw reaches the driver's conn: %v", ok)
			return nil
		})
		tr.err("raw", err)
		tr.err("conn ping", conn.PingContext(ctx))
		tr.err("conn close", conn.Close())
	}
	tr.err("ping", db.PingContext(ctx))

	s := db.Stats()
	tr.add("stats: open=%d inuse=%d idle=%d", s.OpenConnections, s.InUse, s.Idle)
	tr.err("db close", db.Close())
	tr.add("driver: opens=%d closes=%d open=%d resets=%d isvalid=%d begins=%d commits=%d rollbacks=%d prepares=%d stmtcloses=%d rowscloses=%d connectorcloses=%d directs=%d",
		fd.Opens(), fd.ConnCloses(), fd.OpenConns(), fd.ResetSessions(), fd.IsValids(), fd.Begins(), fd.Commits(),
		fd.Rollbacks(), fd.Prepares(), fd.StmtCloses(), fd.RowsCloses(), fd.ConnectorCloses(), fd.Directs())
	return tr.lines
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConformanceWithFakeDrivers(t *testing.T) {
	profiles := []fakedb.Profile{fakedb.Full, fakedb.Legacy, fakedb.ResetterOnly, fakedb.LegacyExecer}
	wrappings := []struct {
		name string
		open func(t *testing.T, fd *fakedb.Driver) *sql.DB
	}{
		{"Register", func(t *testing.T, fd *fakedb.Driver) *sql.DB {
			name := fmt.Sprintf("sqlwatch-fake-%d", registered.Add(1))
			if err := driver.Register(name, fd.Driver(), quiet()); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(name, "fake")
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
		{"NewConnector", func(t *testing.T, fd *fakedb.Driver) *sql.DB {
			c, err := driver.NewConnector(fd.Connector(), quiet())
			if err != nil {
				t.Fatal(err)
			}
			return sql.OpenDB(c)
		}},
		{"Interceptor", func(t *testing.T, fd *fakedb.Driver) *sql.DB {
			c, err := driver.NewConnector(fd.Connector(), quiet(), driver.WithInterceptor(sqlmw.NullInterceptor{}))
			if err != nil {
				t.Fatal(err)
			}
			return sql.OpenDB(c)
		}},
	}
	for _, p := range profiles {
		for _, w := range wrappings {
			t.Run(p.String()+"/"+w.name, func(t *testing.T) {
				raw := fakedb.New(p)
				var rawDB *sql.DB
				if w.name == "Register" {
					name := fmt.Sprintf("raw-fake-%d", registered.Add(1))
					sql.Register(name, raw.Driver())
					rawDB, _ = sql.Open(name, "fake")
				} else {
					rawDB = raw.OpenDB()
				}
				want := script(t, rawDB, raw)
				wrapped := fakedb.New(p)
				got := script(t, w.open(t, wrapped), wrapped)
				compareTranscripts(t, got, want)
			})
		}
	}
}

func compareTranscripts(t *testing.T, got, want []string) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d differs:\n  with sqlwatch:    %s\n  without sqlwatch: %s", i, g, w)
		}
	}
	if t.Failed() {
		t.Logf("without sqlwatch:\n%s", strings.Join(want, "\n"))
	}
}

// quiet keeps the conformance runs' reports out of the test log.
func quiet() driver.Option { return driver.WithLogger(discard) }
