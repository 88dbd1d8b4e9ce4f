package main

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is the "application": ordinary HTTP handlers using
// database/sql. Three of them carry a bug of the kind sqlwatch exists to
// find, marked BUG; the leak reports name the lines below.

// handlersFile is the path of this file as the compiler recorded it. The
// scenario runner checks that a report's origin lies in it.
var handlersFile = func() string {
	_, file, _, _ := runtime.Caller(0)
	return file
}()

// server holds what the handlers need.
type server struct {
	db      *sql.DB
	dialect string // "sqlite", "mysql" or "postgres": decides the placeholders
	log     *slog.Logger
}

// routes returns the service's HTTP handler.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items", s.listItems)
	mux.HandleFunc("POST /orders", s.createOrder) // scenario txleak
	mux.HandleFunc("GET /report", s.report)       // scenario connleak
	mux.HandleFunc("GET /export", s.export)       // scenario rowsleak
	mux.HandleFunc("GET /stock", s.checkStock)    // scenario stall
	mux.HandleFunc("POST /rename", s.rename)      // scenario bypass
	mux.HandleFunc("GET /summary", s.summary)     // scenario concurrent
	mux.HandleFunc("POST /restock", s.restock)    // scenario locked
	mux.HandleFunc("GET /audit", s.audit)         // scenario killed
	return mux
}

type item struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// listItems serves GET /items. It is the correct pattern, for contrast:
// the query runs under the request's context and the rows are always
// closed.
func (s *server) listItems(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.QueryContext(r.Context(), s.q("SELECT id, name FROM sqlwatch_items ORDER BY id LIMIT 100"))
	if err != nil {
		s.fail(w, err)
		return
	}
	defer rows.Close()
	items, err := scanItems(rows)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, items)
}

// scanItems reads every row of an id, name query.
func scanItems(rows *sql.Rows) ([]item, error) {
	items := []item{}
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.ID, &it.Name); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// createOrder serves POST /orders?item=NAME&quantity=N: it records the
// order in a transaction.
//
// BUG (scenario txleak): when quantity is missing or invalid the handler
// answers 400 but neither commits nor rolls back, so the transaction — and
// the connection under it, with its locks — stays open for good. The
// transaction was begun with context.Background() (the code came from a
// background job); had it used r.Context(), database/sql would have rolled
// it back when the request ended and hidden the bug.
func (s *server) createOrder(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("item")
	if name == "" || len(name) > 80 {
		http.Error(w, "item must be 1 to 80 bytes", http.StatusBadRequest)
		return
	}
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.fail(w, err)
		return
	}
	id := newID()
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO sqlwatch_items (id, name) VALUES (?, ?)"), id, name); err != nil {
		tx.Rollback()
		s.fail(w, err)
		return
	}
	qty, err := strconv.Atoi(r.URL.Query().Get("quantity"))
	if err != nil || qty < 1 || qty > 999 {
		http.Error(w, "quantity must be an integer from 1 to 999", http.StatusBadRequest)
		return // BUG: no tx.Rollback()
	}
	label := fmt.Sprintf("%s x%d", name, qty)
	if _, err := tx.ExecContext(ctx, s.q("UPDATE sqlwatch_items SET name = ? WHERE id = ?"), label, id); err != nil {
		tx.Rollback()
		s.fail(w, err)
		return
	}
	if err := tx.Commit(); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, item{ID: id, Name: label})
}

// checkStock serves GET /stock?item=NAME: how many of an item there are,
// read in a transaction so that the figures agree with each other.
//
// BUG (scenario stall): an item that does not exist answers 404 without
// ending the transaction, which keeps its connection for good; a pool
// with few connections soon has none left, and every request waits.
func (s *server) checkStock(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("item")
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.dialect != "sqlite"})
	if err != nil {
		s.fail(w, err)
		return
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM sqlwatch_items WHERE name = ?"), name).Scan(&n); err != nil {
		tx.Rollback()
		s.fail(w, err)
		return
	}
	if n == 0 {
		http.Error(w, "no such item", http.StatusNotFound)
		return // BUG: no tx.Rollback()
	}
	tx.Commit()
	writeJSON(w, http.StatusOK, map[string]int{"count": n})
}

// rename serves POST /rename?id=N&name=X: it checks the item in a
// transaction, then renames it.
//
// BUG (scenario bypass): the rename runs on s.db instead of tx, as in the
// gorm incident (tx := db.Begin(); db.Model(...).Update(...)). It needs a
// second connection while this goroutine holds the transaction's: with a
// full pool, the handler waits for itself for ever.
func (s *server) rename(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlwatch_items").Scan(&n); err != nil {
		s.fail(w, err)
		return
	}
	name := r.URL.Query().Get("name")
	if _, err := s.db.ExecContext(ctx, s.q("UPDATE sqlwatch_items SET name = ? WHERE id = ?"), name, r.URL.Query().Get("id")); err != nil { // BUG: s.db, not tx
		s.fail(w, err)
		return
	}
	if err := tx.Commit(); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"items": n})
}

// summary serves GET /summary: per item, the number of items sharing its
// name, read in one transaction.
//
// BUG (scenario concurrent): the per-item counts run in goroutines, all on
// the one transaction, while its rows are still being read. One
// connection cannot do that: go-sql-driver/mysql answers "busy buffer",
// then "invalid connection".
func (s *server) summary(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.dialect != "sqlite"})
	if err != nil {
		s.fail(w, err)
		return
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT id, name FROM sqlwatch_items ORDER BY id")
	if err != nil {
		s.fail(w, err)
		return
	}
	defer rows.Close()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string][2]int{}
		errs   []error
	)
	for n := 0; n < 8 && rows.Next(); n++ {
		var it item
		if err := rows.Scan(&it.ID, &it.Name); err != nil {
			break
		}
		// Two figures per item, fetched in parallel... BUG: on the one tx,
		// while its rows are still being read.
		var same, longer int
		var err1, err2 error
		wg.Go(func() {
			err1 = tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM sqlwatch_items WHERE name = ?"), it.Name).Scan(&same)
		})
		wg.Go(func() {
			err2 = tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM sqlwatch_items WHERE name > ?"), it.Name).Scan(&longer)
		})
		wg.Wait()
		mu.Lock()
		counts[it.Name], errs = [2]int{same, longer}, append(errs, err1, err2)
		mu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, counts)
}

// restock serves POST /restock?id=N: it bumps an item in a transaction
// that then does some slow work (two seconds) before committing. Its
// session waits at most a short time for a lock.
//
// BUG (scenario locked): two restocks of one item at once: the second
// waits for the first's row lock (SQLite: the database lock) and fails
// with a lock timeout ("database is locked" on SQLite). The error names
// no culprit; sqlwatch's report lists the transaction holding the lock.
func (s *server) restock(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer conn.Close()
	short := map[string][2]string{
		"sqlite":   {"PRAGMA busy_timeout = 300", "PRAGMA busy_timeout = 5000"},
		"mysql":    {"SET SESSION innodb_lock_wait_timeout = 1", "SET SESSION innodb_lock_wait_timeout = DEFAULT"},
		"postgres": {"SET lock_timeout = '500ms'", "SET lock_timeout = DEFAULT"},
	}[s.dialect]
	if _, err := conn.ExecContext(ctx, short[0]); err != nil {
		s.fail(w, err)
		return
	}
	defer conn.ExecContext(context.Background(), short[1])
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q("UPDATE sqlwatch_items SET name = name WHERE id = ?"), r.URL.Query().Get("id")); err != nil {
		s.fail(w, err) // the second restock fails here
		return
	}
	time.Sleep(2 * time.Second) // the slow work, holding the lock
	if err := tx.Commit(); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// audit serves GET /audit: it reads the items in a transaction. To show
// what happens when a server session dies under a transaction (an
// operator's KILL, a server restart, wait_timeout), it kills its own
// session half way.
func (s *server) audit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	kill := map[string][2]string{
		"mysql":    {"SELECT CONNECTION_ID()", "KILL %d"},
		"postgres": {"SELECT pg_backend_pid()", "SELECT pg_terminate_backend(%d)"},
	}[s.dialect]
	if kill[0] == "" {
		http.Error(w, "no server session to kill on SQLite", http.StatusNotImplemented)
		return
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, kill[0]).Scan(&id); err != nil {
		s.fail(w, err)
		return
	}
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf(kill[1], id)); err != nil { // the "operator"
		s.fail(w, err)
		return
	}
	time.Sleep(100 * time.Millisecond)
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlwatch_items").Scan(&n); err != nil {
		s.fail(w, err) // "invalid connection", "driver: bad connection", "conn closed"
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"items": n})
}

// report serves GET /report?period=day|week: a count of the items, run on
// a dedicated connection (where session settings would go).
//
// BUG (scenario connleak): an unknown period returns 400 before
// conn.Close(), so the connection never goes back to the pool; ten such
// requests and the pool (SetMaxOpenConns(10)) is exhausted.
func (s *server) report(w http.ResponseWriter, r *http.Request) {
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		s.fail(w, err)
		return
	}
	var count int64
	if err := conn.QueryRowContext(r.Context(), s.q("SELECT COUNT(*) FROM sqlwatch_items")).Scan(&count); err != nil {
		conn.Close()
		s.fail(w, err)
		return
	}
	period := r.URL.Query().Get("period")
	switch period {
	case "", "day", "week":
	default:
		http.Error(w, "unknown period "+strconv.Quote(period), http.StatusBadRequest)
		return // BUG: no conn.Close()
	}
	conn.Close()
	writeJSON(w, http.StatusOK, map[string]any{"period": period, "items": count})
}

// export serves GET /export?format=csv|json: every item.
//
// BUG (scenario rowsleak): the rows are queried before the format is
// checked, and rows.Close is deferred only in the supported branches, so
// an unsupported format leaves the result set (and its connection) open.
// The query uses context.Background() so that a long export survives a
// client disconnect; with r.Context(), database/sql would have closed the
// rows when the request ended.
func (s *server) export(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.QueryContext(context.Background(), s.q("SELECT id, name FROM sqlwatch_items ORDER BY id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	var it item
	switch format := r.URL.Query().Get("format"); format {
	case "", "csv":
		defer rows.Close()
		w.Header().Set("Content-Type", "text/csv")
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "name"})
		for rows.Next() {
			if err := rows.Scan(&it.ID, &it.Name); err != nil {
				s.log.Error("export", "err", err)
				return
			}
			cw.Write([]string{strconv.FormatInt(it.ID, 10), it.Name})
		}
		cw.Flush()
		if err := rows.Err(); err != nil {
			s.log.Error("export", "err", err) // the status is already sent
		}
	case "json":
		defer rows.Close()
		items, err := scanItems(rows)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, items)
	default:
		http.Error(w, "unsupported format "+strconv.Quote(format), http.StatusBadRequest)
		return // BUG: rows never closed
	}
}

// q adapts a query written with ? placeholders to the dialect: PostgreSQL
// wants $1, $2, ... (the example's queries have no literal '?').
func (s *server) q(query string) string {
	if s.dialect != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// newID picks a random positive id that fits the portable INTEGER column,
// so that runs against a shared database do not collide.
func newID() int64 {
	return int64(rand.Int32N(math.MaxInt32)) + 1
}

func (s *server) fail(w http.ResponseWriter, err error) {
	s.log.Error("request failed", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
