package driver_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/fakedb"
	"github.com/sqlwatch/sqlwatch/internal/testutil"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
)

// capture is a leak.TestingT that keeps what the gate says.
type capture struct {
	mu  sync.Mutex
	out []string
}

func (c *capture) Error(args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, fmt.Sprint(args...))
}

// ph returns the n-th placeholder of the backend's dialect.
func ph(b backend, n int) string {
	if b.name == "postgres" || b.name == "pgx" {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// secretPool opens a pool on b (or, for "fake", on fakedb registered with
// a MySQL-style DSN) whose DSN holds password where the server allows one.
func secretPool(t *testing.T, b backend, password string, opts ...driver.Option) *sql.DB {
	t.Helper()
	name := fmt.Sprintf("sqlwatch-secret-%s-%d", b.name, registered.Add(1))
	var dsn string
	switch b.name {
	case "fake":
		dsn = "root:" + password + "@tcp(127.0.0.1:3306)/test?parseTime=true"
		if err := driver.Register(name, fakedb.New(fakedb.Full).Driver(), opts...); err != nil {
			t.Fatal(err)
		}
	default:
		dsn = b.dsn(t)
		if b.name == "postgres" || b.name == "pgx" {
			// The server trusts local connections: any password is
			// accepted, so it can sit in the DSN as in production.
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.UserPassword(u.User.Username(), password)
			dsn = u.String()
		}
		if err := driver.RegisterByName(name, b.inner, opts...); err != nil {
			t.Fatal(err)
		}
	}
	db := openAndPing(t, b, name, dsn)
	return db
}

// TestSecretsNeverLeave plants secrets in statement arguments, in the DSN's
// password and (with WithRedactedSQL) in literals of the SQL text, makes
// leaks, misuse (tx_bypass, open_rows) and a lock conflict, and reads
// everything sqlwatch outputs: the JSON log, the live page (HTML and
// JSON), the metrics, the report and misuse callbacks and the test gate.
// No secret may appear in any of them.
func TestSecretsNeverLeave(t *testing.T) {
	all := append([]backend{{name: "fake"}}, backends...)
	for _, b := range all {
		t.Run(b.name, func(t *testing.T) { secretsScenario(t, b) })
	}
}

func secretsScenario(t *testing.T, b backend) {
	salt := fmt.Sprintf("%08x", rand.Uint32())
	argSecret := "hunter2-" + salt
	password := "Sup3rS3cret" + salt
	litSecret := "lit3ral-" + salt
	numSecret := fmt.Sprint(700000000 + rand.IntN(99999999))
	secrets := []string{argSecret, password, litSecret, numSecret, salt}

	var logBuf testutil.LockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	var mu sync.Mutex
	var reports []leak.Report
	var misuses []leak.Misuse
	db := secretPool(t, b, password,
		driver.WithLogger(logger),
		driver.WithRedactedSQL(),
		driver.WithThreshold(leak.KindTx, 150*time.Millisecond),
		driver.WithThreshold(leak.KindConn, 150*time.Millisecond),
		driver.WithThreshold(leak.KindRows, 150*time.Millisecond),
		driver.WithInterval(20*time.Millisecond),
		driver.WithReportFunc(func(r leak.Report) { mu.Lock(); reports = append(reports, r); mu.Unlock() }),
		driver.WithMisuseFunc(func(m leak.Misuse) { mu.Lock(); misuses = append(misuses, m); mu.Unlock() }),
	)
	tr := driver.TrackerOf(db)
	reg := prometheus.NewRegistry()
	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	tbl := "sqlwatch_secret_" + b.name
	if b.name != "fake" {
		db.Exec("DROP TABLE IF EXISTS " + tbl)
		if _, err := db.Exec("CREATE TABLE " + tbl + " (id INTEGER PRIMARY KEY, name VARCHAR(100))"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO " + tbl + " (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')"); err != nil {
			t.Fatal(err)
		}
		defer db.Exec("DROP TABLE " + tbl)
	}
	update := fmt.Sprintf("UPDATE %s SET name = %s WHERE id = %s", tbl, ph(b, 1), ph(b, 2))
	count := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE name = %s", tbl, ph(b, 1))
	literal := fmt.Sprintf("UPDATE %s SET name = '%s' WHERE id = %s", tbl, litSecret, numSecret)

	// A leaked tx holding row 1, whose last statement has literals.
	tx1, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	if _, err := tx1.ExecContext(ctx, update, argSecret, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := tx1.ExecContext(ctx, literal); err != nil {
		t.Fatal(err)
	}
	// tx_bypass: the pool used by the goroutine that holds tx1 (a read:
	// SQLite has one writer).
	var n int
	if err := db.QueryRowContext(ctx, count, argSecret).Scan(&n); err != nil && b.name != "fake" {
		t.Fatal(err)
	}

	// open_rows: a statement over open rows, on another tx; the rows are
	// left open (a rows leak).
	tx2, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	rowsQuery := fmt.Sprintf("SELECT id, name FROM %s WHERE name <> %s", tbl, ph(b, 1))
	if b.name == "fake" {
		rowsQuery = "SELECT ROWS 3"
	}
	rows, err := tx2.QueryContext(ctx, rowsQuery, argSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	rows.Next()
	// Without arguments: with some, go-sql-driver/mysql prepares the
	// statement, the prepare fails (busy buffer) and open_rows is not
	// reported (see the report of this change).
	tx2.ExecContext(ctx, "SELECT COUNT(*) FROM "+tbl) // the driver's answer (busy buffer on MySQL) does not matter

	// A lock conflict: row 1 is held by tx1; the conn is then leaked.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if b.name != "fake" {
		setup := shortLockWait(b)
		if _, err := conn.ExecContext(ctx, setup); err != nil {
			t.Fatal(err)
		}
		tx3, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx3.ExecContext(ctx, update, argSecret, 1); err == nil {
			t.Error("the conflicting update did not fail")
		}
		tx3.Rollback()
	}
	if _, err := conn.ExecContext(ctx, count, argSecret); err != nil && b.name != "fake" {
		t.Fatal(err)
	}

	// Wait for the reports.
	wantMisuse := []string{leak.MisuseTxBypass, leak.MisuseOpenRows}
	if b.name != "fake" {
		wantMisuse = append(wantMisuse, leak.MisuseLockConflict)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		kinds := map[string]bool{}
		for _, r := range reports {
			kinds[r.Kind.String()] = true
		}
		for _, m := range misuses {
			kinds[m.Kind] = true
		}
		mu.Unlock()
		ok := kinds["tx"] && kinds["rows"] && kinds["conn"]
		for _, k := range wantMisuse {
			ok = ok && kinds[k]
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports seen: %v; want tx, rows, conn and %v", kinds, wantMisuse)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Everything sqlwatch shows while the resources are open.
	outputs := map[string]string{}
	for _, q := range []string{"", "?format=json"} {
		rec := httptest.NewRecorder()
		leak.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/sqlwatch"+q, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), tr.DBName()) {
			t.Errorf("page %q: status %d, pool %q not listed", q, rec.Code, tr.DBName())
		}
		outputs["page"+q] = rec.Body.String()
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	outputs["metrics"] = rec.Body.String()
	if !strings.Contains(outputs["metrics"], `sqlwatch_tx_open{db_name="`+tr.DBName()+`"}`) {
		t.Errorf("metrics lack sqlwatch_tx_open for %s:\n%.2000s", tr.DBName(), outputs["metrics"])
	}
	gate := &capture{}
	leak.VerifyNone(gate, leak.Pool(db), leak.RetryFor(0))
	outputs["gate"] = strings.Join(gate.out, "\n")
	if len(gate.out) == 0 {
		t.Error("the gate found nothing open")
	}
	snap := fmt.Sprintf("%+v", tr.Snapshot())

	// Release everything: the release lines go to the log too.
	rows.Close()
	tx2.Rollback()
	conn.Close()
	tx1.Rollback()
	db.Close()
	outputs["log"] = logBuf.String()
	mu.Lock()
	outputs["reports"] = fmt.Sprintf("%+v", reports)
	outputs["misuses"] = fmt.Sprintf("%+v", misuses)
	mu.Unlock()
	outputs["snapshot"] = snap
	outputs["db_name"] = tr.DBName()

	for where, text := range outputs {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q:\n%.3000s", where, s, text)
			}
		}
	}
	// The SQL text is there, with its literals redacted.
	want := fmt.Sprintf("UPDATE %s SET name = ? WHERE id = ?", tbl)
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, r := range reports {
		if r.Kind == leak.KindTx && !r.Released && r.LastQuery == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no tx report with the last query %q: %+v", want, reports)
	}
	if !strings.Contains(outputs["log"], `"last_query":"`+want+`"`) {
		t.Errorf("the log lacks the redacted last query %q", want)
	}
	for _, m := range misuses {
		if m.Kind == leak.MisuseLockConflict && (len(m.Holders) == 0 || m.Holders[0].LastQuery != want) {
			t.Errorf("lock conflict holders: %+v; want the tx's redacted last query first", m.Holders)
		}
	}
	t.Logf("%s: db_name %q; %d reports, %d misuse reports; %d bytes of log, %d of page, %d of metrics checked",
		b.name, tr.DBName(), len(reports), len(misuses), len(outputs["log"]), len(outputs["page"])+len(outputs["page?format=json"]), len(outputs["metrics"]))
}

// TestSecretsQueryLimitAndRedaction: the SQL text of reports (leak and
// misuse) is cut to WithQueryLimit, and WithRedactedSQL redacts a
// literal even when the cut falls inside it.
func TestSecretsQueryLimitAndRedaction(t *testing.T) {
	long := "UPDATE accounts SET name = 'hunter2-in-a-literal', email = 'x@example.com' WHERE id = 123456"
	for _, tc := range []struct {
		redacted bool
		limit    int
		want     string
	}{
		{false, 40, long[:40] + "…"},
		{true, 40, "UPDATE accounts SET name = ?…"},
		{true, 1000, "UPDATE accounts SET name = ?, email = ? WHERE id = ?"},
	} {
		t.Run(fmt.Sprintf("redacted=%v,limit=%d", tc.redacted, tc.limit), func(t *testing.T) {
			var mu sync.Mutex
			var reports []leak.Report
			var misuses []leak.Misuse
			opts := []driver.Option{quiet(), driver.WithQueryLimit(tc.limit),
				driver.WithThreshold(leak.KindTx, 30*time.Millisecond), driver.WithInterval(10 * time.Millisecond),
				driver.WithReportFunc(func(r leak.Report) { mu.Lock(); reports = append(reports, r); mu.Unlock() }),
				driver.WithMisuseFunc(func(m leak.Misuse) { mu.Lock(); misuses = append(misuses, m); mu.Unlock() })}
			if tc.redacted {
				opts = append(opts, driver.WithRedactedSQL())
			}
			c, err := driver.NewConnector(fakedb.New(fakedb.Full).Connector(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			defer db.Close()
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.Exec(long); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(long); err != nil { // tx_bypass, with the long text as its query
				t.Fatal(err)
			}
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) > 0 && len(misuses) > 0 })
			mu.Lock()
			defer mu.Unlock()
			if got := reports[0].LastQuery; got != tc.want {
				t.Errorf("leak report: got %q; want %q", got, tc.want)
			}
			if got := misuses[0].Here.Query; got != tc.want {
				t.Errorf("misuse report: got %q; want %q", got, tc.want)
			}
			if got := misuses[0].There.Query; got != tc.want {
				t.Errorf("misuse report, tx side: got %q; want %q", got, tc.want)
			}
		})
	}
}
