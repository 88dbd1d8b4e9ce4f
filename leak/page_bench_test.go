package leak_test

import (
	"database/sql"
	"net/http/httptest"
	"testing"

	"github.com/sqlwatch/sqlwatch/leak"
)

// openStmts prepares n statements on db and leaves them open, all from
// one line, as a loop that forgets to close them does.
func openStmts(tb testing.TB, db *sql.DB, n int) {
	tb.Helper()
	stmts := make([]*sql.Stmt, 0, n)
	for range n {
		st, err := db.Prepare("SELECT name FROM items WHERE id = ? AND note <> 'a statement of some length, as an application has'")
		if err != nil {
			tb.Fatal(err)
		}
		stmts = append(stmts, st)
	}
	tb.Cleanup(func() {
		for _, st := range stmts {
			st.Close()
		}
	})
}

// BenchmarkPage20k serves the live page with 20,000 open statements in one
// pool, opened at one line ("one_line") or spread over 120 lines
// ("120_origins"): its time per request and its size ("bytes/page"), as
// JSON, as HTML and for a HEAD request, with the default limit.
func BenchmarkPage20k(b *testing.B) {
	b.Run("one_line", func(b *testing.B) {
		db := openPool(b, "page-bench")
		openStmts(b, db, 20_000)
		benchPage(b)
	})
	b.Run("120_origins", func(b *testing.B) {
		db := openPool(b, "page-bench-origins")
		stmts := make([]*sql.Stmt, 0, 20_000)
		b.Cleanup(func() {
			for _, st := range stmts {
				st.Close()
			}
		})
		for i := range 20_000 {
			st, err := stmtOpeners[i%len(stmtOpeners)](db)
			if err != nil {
				b.Fatal(err)
			}
			stmts = append(stmts, st)
		}
		benchPage(b)
	})
}

func benchPage(b *testing.B) {
	for _, bc := range []struct{ name, method, target string }{
		{"json", "GET", "/debug/sqlwatch?format=json"},
		{"html", "GET", "/debug/sqlwatch"},
		{"head", "HEAD", "/debug/sqlwatch"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := leak.Handler()
			b.ReportAllocs()
			size := 0
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(bc.method, bc.target, nil))
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
