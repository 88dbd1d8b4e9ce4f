package leak_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
)

// pagePool returns the live page's JSON entry of the pool named name.
func pagePool(t *testing.T, name string) map[string]json.RawMessage {
	t.Helper()
	rec := httptest.NewRecorder()
	leak.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/sqlwatch?format=json", nil))
	var page struct {
		Pools []map[string]json.RawMessage `json:"pools"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	for _, p := range page.Pools {
		var n string
		json.Unmarshal(p["db_name"], &n)
		if n == name {
			return p
		}
	}
	t.Fatalf("no pool %q on the page", name)
	return nil
}

func pageHTML(t *testing.T) string {
	rec := httptest.NewRecorder()
	leak.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/sqlwatch?format=html", nil))
	return rec.Body.String()
}

// TestPageDBStats: the live page shows a pool's sql.DBStats once its
// *sql.DB was given to metrics.Register or NewMonitor, and not before.
func TestPageDBStats(t *testing.T) {
	for _, how := range []string{"metrics.Register", "NewMonitor"} {
		t.Run(how, func(t *testing.T) {
			name := "pagestats-" + strings.ReplaceAll(how, ".", "-")
			db := openPool(t, name)
			db.SetMaxOpenConns(7)
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, ok := pagePool(t, name)["db_stats"]; ok {
				t.Fatalf("db_stats shown before the *sql.DB was known")
			}
			switch how {
			case "metrics.Register":
				if err := metrics.Register(prometheus.NewRegistry(), db); err != nil {
					t.Fatal(err)
				}
			case "NewMonitor":
				m, err := leak.NewMonitor(db, leak.MonitorConfig{})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Stop()
			}
			raw, ok := pagePool(t, name)["db_stats"]
			if !ok {
				t.Fatalf("no db_stats once the *sql.DB is known")
			}
			var s struct {
				MaxOpen int `json:"max_open"`
				Open    int `json:"open"`
				InUse   int `json:"in_use"`
			}
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			if s.MaxOpen != 7 || s.Open != 1 || s.InUse != 1 {
				t.Errorf("db_stats %s; want max_open 7, open 1, in_use 1", raw)
			}
			if html := pageHTML(t); !strings.Contains(html, "database/sql: 1 open (1 in use, 0 idle) of at most 7;") {
				t.Errorf("the HTML page lacks the pool's database/sql line")
			}
		})
	}
}
