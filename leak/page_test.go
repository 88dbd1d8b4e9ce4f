package leak_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/leak"
)

// get serves one request from the page.
func get(t *testing.T, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	leak.Handler().ServeHTTP(w, req)
	return w
}

func TestPageHTMLListsOpenTx(t *testing.T) {
	db := openPool(t, "page-html")
	origin := nextLine()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tx.Exec("DELETE FROM items WHERE id = ?", 7)

	w := get(t, "GET", "/debug/sqlwatch")
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d; want 200\n%s", w.Code, body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q; want text/html", ct)
	}
	for _, want := range []string{
		"<h2>Pool <code>page-html</code></h2>",
		`<td class="kind">tx</td>`,
		"<code>" + origin + "</code>",
		"github.com/sqlwatch/sqlwatch/leak_test.TestPageHTMLListsOpenTx",
		"<code>DELETE FROM items WHERE id = ?</code>",
		"<details><summary>",
		"net/http/pprof",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "http-equiv") {
		t.Error("a refresh without ?refresh")
	}
	tx.Rollback()
	if body := get(t, "GET", "/debug/sqlwatch").Body.String(); strings.Contains(body, origin) {
		t.Error("a closed tx is still listed")
	}
}

// pageDoc is the JSON shape documented on leak.Handler.
type pageDoc struct {
	Time  time.Time `json:"time"`
	Pools []struct {
		DBName     string            `json:"db_name"`
		Open       map[string]int    `json:"open"`
		Thresholds map[string]string `json:"thresholds"`
		Stats      struct {
			Reported       int64            `json:"reported"`
			ReportedByKind map[string]int64 `json:"reported_by_kind"`
			Released       int64            `json:"released"`
			Suppressed     int64            `json:"suppressed"`
			Dropped        int64            `json:"dropped"`
			Panics         int64            `json:"panics"`
			PoolAlerts     int64            `json:"pool_alerts"`
		} `json:"stats"`
		Resources []struct {
			Kind          string    `json:"kind"`
			Opened        time.Time `json:"opened"`
			Age           string    `json:"age"`
			AgeSeconds    float64   `json:"age_seconds"`
			Origin        string    `json:"origin"`
			Func          string    `json:"func"`
			Goroutine     int64     `json:"goroutine"`
			Statements    int64     `json:"statements"`
			LastQuery     string    `json:"last_query"`
			OverThreshold bool      `json:"over_threshold"`
			Covered       bool      `json:"covered"`
			InTx          bool      `json:"in_tx"`
			Stack         []string  `json:"stack"`
		} `json:"resources"`
	} `json:"pools"`
}

func decodePage(t *testing.T, w *httptest.ResponseRecorder) pageDoc {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q; want application/json", ct)
	}
	var doc pageDoc
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields() // the documented shape, all of it
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decoding the page: %v", err)
	}
	return doc
}

func TestPageJSON(t *testing.T) {
	db := openPool(t, "page-json-b")
	other := openPool(t, "page-json-a")
	ro, err := other.Query("SELECT ROWS 2")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	origin := nextLine()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tx.Exec("INSERT INTO items (name) VALUES (?)", "secret-value")
	tx.Exec("UPDATE items SET n = 1")

	for _, w := range []*httptest.ResponseRecorder{
		get(t, "GET", "/?format=json"),
		get(t, "GET", "/", "Accept", "application/json"),
	} {
		if strings.Contains(w.Body.String(), "secret-value") {
			t.Error("an argument value is on the page")
		}
		doc := decodePage(t, w)
		if time.Since(doc.Time) > time.Minute {
			t.Errorf("time %v", doc.Time)
		}
		ia, ib := -1, -1
		for i, p := range doc.Pools {
			switch p.DBName {
			case "page-json-a":
				ia = i
			case "page-json-b":
				ib = i
			}
			if i > 0 && doc.Pools[i-1].DBName > p.DBName {
				t.Errorf("pools not sorted by name: %q before %q", doc.Pools[i-1].DBName, p.DBName)
			}
		}
		if ia < 0 || ib < 0 || ia > ib {
			t.Fatalf("pools a at %d, b at %d", ia, ib)
		}
		p := doc.Pools[ib]
		if p.Open["tx"] != 1 || p.Open["conn"] != 1 || p.Open["rows"] != 0 || p.Open["stmt"] != 0 {
			t.Errorf("open: %v; want 1 tx, 1 conn", p.Open)
		}
		if p.Thresholds["tx"] != "1m0s" || p.Thresholds["stmt"] != "0s" {
			t.Errorf("thresholds: %v", p.Thresholds)
		}
		if len(p.Stats.ReportedByKind) != 4 || p.Stats.Reported != 0 {
			t.Errorf("stats: %+v", p.Stats)
		}
		if len(p.Resources) != 2 {
			t.Fatalf("resources: %+v; want the tx and its conn", p.Resources)
		}
		for i, r := range p.Resources {
			if i > 0 && r.Opened.Before(p.Resources[i-1].Opened) {
				t.Error("resources not oldest first")
			}
			if r.Origin != origin || r.Func != "github.com/sqlwatch/sqlwatch/leak_test.TestPageJSON" ||
				r.Goroutine == 0 || r.Statements != 2 || r.LastQuery != "UPDATE items SET n = 1" ||
				len(r.Stack) == 0 || r.Stack[0] != r.Func+" "+origin || r.OverThreshold ||
				r.AgeSeconds < 0 || r.Age == "" || time.Since(r.Opened) > time.Minute {
				t.Errorf("resource %d: %+v", i, r)
			}
			switch r.Kind {
			case "tx":
				if r.Covered || r.InTx {
					t.Errorf("tx: covered %v, in_tx %v", r.Covered, r.InTx)
				}
			case "conn":
				if !r.Covered || !r.InTx {
					t.Errorf("conn under a tx: covered %v, in_tx %v; want true, true", r.Covered, r.InTx)
				}
			default:
				t.Errorf("kind %q", r.Kind)
			}
		}
		if a := doc.Pools[ia]; a.Open["rows"] != 1 || len(a.Resources) != 2 {
			t.Errorf("pool a: %+v", a)
		}
	}
}

func TestPageRefresh(t *testing.T) {
	body := get(t, "GET", "/debug/sqlwatch?refresh=7").Body.String()
	if !strings.Contains(body, `<meta http-equiv="refresh" content="7">`) {
		t.Errorf("no meta refresh:\n%s", body)
	}
	if body := get(t, "GET", "/debug/sqlwatch?refresh=5").Body.String(); !strings.Contains(body, "<strong>5s</strong>") ||
		!strings.Contains(body, `<a href="?refresh=0">off</a>`) {
		t.Errorf("refresh links:\n%s", body)
	}
	if body := get(t, "GET", "/debug/sqlwatch?refresh=0").Body.String(); strings.Contains(body, "http-equiv") {
		t.Error("refresh=0 refreshes")
	}
	for _, bad := range []string{"x", "-1", "3601", "1.5"} {
		w := get(t, "GET", "/debug/sqlwatch?refresh="+bad)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "refresh must be a whole number of seconds from 0 to 3600") {
			t.Errorf("refresh=%s: %d %q; want 400", bad, w.Code, w.Body.String())
		}
	}
}

func TestPageContentTypes(t *testing.T) {
	f := func(target, accept, want string) {
		t.Helper()
		w := get(t, "GET", target, "Accept", accept)
		if got := w.Header().Get("Content-Type"); got != want || w.Code != http.StatusOK {
			t.Errorf("GET %s, Accept %q: %d %q; want 200 %q", target, accept, w.Code, got, want)
		}
		if w.Header().Get("Vary") != "Accept" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("headers: %v", w.Header())
		}
	}
	const html, js = "text/html; charset=utf-8", "application/json; charset=utf-8"
	f("/", "", html)
	f("/", "*/*", html)
	f("/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", html)
	f("/", "application/json", js)
	f("/", "application/json;q=0.9, text/plain", js)
	f("/", "text/html, application/json", html)
	f("/?format=json", "text/html", js)
	f("/?format=html", "application/json", html)
	f("/?format=json&refresh=5", "", js) // refresh is for the HTML page only

	if w := get(t, "GET", "/?format=xml"); w.Code != http.StatusBadRequest {
		t.Errorf("format=xml: %d; want 400", w.Code)
	}
	w := get(t, "POST", "/")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q; want 405, GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	w = get(t, "HEAD", "/")
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

// Everything the application controls is escaped: the pool name and the
// SQL text (an origin is a file name and line, escaped the same way).
func TestPageEscapes(t *testing.T) {
	db := openPool(t, `<script>alert("pool")</script>`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tx.Exec(`SELECT '<script>alert(1)</script>' FROM "a&b"`)

	body := get(t, "GET", "/").Body.String()
	if strings.Contains(body, "<script") {
		t.Errorf("unescaped <script> on the page:\n%s", body)
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;pool&#34;)&lt;/script&gt;",
		"SELECT &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; FROM &#34;a&amp;b&#34;",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	doc := decodePage(t, get(t, "GET", "/?format=json"))
	found := false
	for _, p := range doc.Pools {
		if p.DBName == `<script>alert("pool")</script>` {
			found = len(p.Resources) > 0 && p.Resources[0].LastQuery == `SELECT '<script>alert(1)</script>' FROM "a&b"`
		}
	}
	if !found {
		t.Error("the JSON does not carry the pool's name and query intact")
	}
}

// With no pool open, the page says so.
func TestPageEmpty(t *testing.T) {
	if len(leak.Trackers()) > 0 {
		t.Skip("other pools are open")
	}
	if body := get(t, "GET", "/").Body.String(); !strings.Contains(body, "No pool opened through sqlwatch is open.") {
		t.Errorf("empty page:\n%s", body)
	}
}
