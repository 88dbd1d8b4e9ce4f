package leak_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/track"
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
		Groups     int `json:"groups"`
		Limit      int `json:"limit"`
		Unresolved int `json:"unresolved"`
		Resources  []struct {
			Kind          string    `json:"kind"`
			Count         int       `json:"count"`
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
		if len(p.Resources) != 2 || p.Groups != 2 || p.Limit != 100 || p.Unresolved != 0 {
			t.Fatalf("resources: %+v, groups %d, limit %d, unresolved %d; want the tx and its conn, 2, 100, 0", p.Resources, p.Groups, p.Limit, p.Unresolved)
		}
		for i, r := range p.Resources {
			if i > 0 && r.Opened.Before(p.Resources[i-1].Opened) {
				t.Error("resources not oldest first")
			}
			if r.Origin != origin || r.Func != "github.com/sqlwatch/sqlwatch/leak_test.TestPageJSON" ||
				r.Count != 1 || r.Goroutine == 0 || r.Statements != 2 || r.LastQuery != "UPDATE items SET n = 1" ||
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
	if len(track.Trackers()) > 0 {
		t.Skip("other pools are open")
	}
	if body := get(t, "GET", "/").Body.String(); !strings.Contains(body, "No pool opened through sqlwatch is open.") {
		t.Errorf("empty page:\n%s", body)
	}
}

// poolNamed returns the pool named name on the page.
func poolNamed(t *testing.T, doc pageDoc, name string) int {
	t.Helper()
	for i, p := range doc.Pools {
		if p.DBName == name {
			return i
		}
	}
	t.Fatalf("no pool %q on the page", name)
	return -1
}

// Resources of one kind opened at one line are one row, with their count
// and the oldest's details.
func TestPageGroupsByOrigin(t *testing.T) {
	db := openPool(t, "page-group")
	openStmts(t, db, 500)
	origin := nextLine()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	doc := decodePage(t, get(t, "GET", "/?format=json"))
	p := doc.Pools[poolNamed(t, doc, "page-group")]
	if p.Open["stmt"] != 500 || p.Open["tx"] != 1 || p.Open["conn"] != 1 {
		t.Errorf("open: %v; want 500 stmt, 1 tx, 1 conn", p.Open)
	}
	if p.Groups != 3 || len(p.Resources) != 3 {
		t.Fatalf("groups %d, %d rows; want 3: the statements, the tx, its conn", p.Groups, len(p.Resources))
	}
	st := p.Resources[0] // the oldest
	if st.Kind != "stmt" || st.Count != 500 || !strings.HasPrefix(st.Origin, "leak/page_bench_test.go:") ||
		st.Func != "github.com/sqlwatch/sqlwatch/leak_test.openStmts" || len(st.Stack) == 0 {
		t.Errorf("statements' row: %+v; want stmt, count 500, from openStmts", st)
	}
	for _, r := range p.Resources[1:] {
		if (r.Kind != "tx" && r.Kind != "conn") || r.Count != 1 || r.Origin != origin {
			t.Errorf("row %+v; want the tx or its conn, count 1, at %s", r, origin)
		}
	}

	body := get(t, "GET", "/").Body.String()
	for _, want := range []string{
		`<td class="num count">500</td>`,
		"502 open resource(s) in 3 row(s), one per kind and origin.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// ?limit=N lists the N oldest rows of each pool, 100 by default, and the
// page says how many there are.
func TestPageLimit(t *testing.T) {
	db := openPool(t, "page-limit")
	var stmts []*sql.Stmt
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	for _, open := range stmtOpeners {
		st, err := open(db)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, st)
	}
	n := len(stmtOpeners)
	all := decodePage(t, get(t, "GET", "/?format=json&limit=10000"))
	pa := all.Pools[poolNamed(t, all, "page-limit")]
	if pa.Groups != n || len(pa.Resources) != n || pa.Limit != 10000 {
		t.Fatalf("limit=10000: groups %d, %d rows, limit %d; want %d, %d, 10000", pa.Groups, len(pa.Resources), pa.Limit, n, n)
	}
	origins := map[string]bool{}
	for i, r := range pa.Resources {
		origins[r.Origin] = true
		if r.Count != 1 || i > 0 && r.Opened.Before(pa.Resources[i-1].Opened) {
			t.Errorf("row %d: %+v; want count 1, oldest first", i, r)
		}
	}
	if len(origins) != n {
		t.Errorf("%d origins; want %d", len(origins), n)
	}
	f := func(target string, want int) {
		t.Helper()
		doc := decodePage(t, get(t, "GET", target))
		p := doc.Pools[poolNamed(t, doc, "page-limit")]
		if p.Groups != n || len(p.Resources) != want || p.Limit != want || p.Open["stmt"] != n {
			t.Fatalf("%s: groups %d, %d rows, limit %d, open %v; want %d, %d, %d", target, p.Groups, len(p.Resources), p.Limit, p.Open, n, want, want)
		}
		for i, r := range p.Resources {
			if r.Origin != pa.Resources[i].Origin {
				t.Errorf("%s: row %d at %s; want the oldest, at %s", target, i, r.Origin, pa.Resources[i].Origin)
			}
		}
	}
	f("/?format=json", 100)
	f("/?format=json&limit=5", 5)

	body := get(t, "GET", "/?limit=5&refresh=2").Body.String()
	for _, want := range []string{
		"120 open resource(s) in 120 row(s), one per kind and origin; the oldest 5 shown (?limit=N shows up to N, at most 10000).",
		`<a href="?refresh=0&amp;limit=5">off</a>`,
		`<a href="?format=json&amp;limit=5">JSON</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if got := strings.Count(body, `<td class="num count">`); got < 5 {
		t.Errorf("%d rows in the HTML page; want at least this pool's 5", got)
	}
	for _, bad := range []string{"0", "-1", "10001", "x", "1.5"} {
		w := get(t, "GET", "/?limit="+bad)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "limit must be a whole number of rows from 1 to 10000") {
			t.Errorf("limit=%s: %d %q; want 400", bad, w.Code, w.Body.String())
		}
	}
}

// With 20,000 open statements from 120 origins, the page with the default
// limit stays small.
func TestPageSizeBound(t *testing.T) {
	db := openPool(t, "page-size")
	var stmts []*sql.Stmt
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	for i := range 20_000 {
		st, err := stmtOpeners[i%len(stmtOpeners)](db)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, st)
	}
	const bound = 256 << 10
	for _, target := range []string{"/?format=json", "/"} {
		w := get(t, "GET", target)
		if w.Code != http.StatusOK || w.Body.Len() > bound {
			t.Errorf("GET %s: %d, %d bytes; want 200 and at most %d", target, w.Code, w.Body.Len(), bound)
		}
		t.Logf("GET %s: %d bytes", target, w.Body.Len())
	}
	doc := decodePage(t, get(t, "GET", "/?format=json"))
	if p := doc.Pools[poolNamed(t, doc, "page-size")]; p.Open["stmt"] != 20_000 || p.Groups != len(stmtOpeners) || len(p.Resources) != 100 {
		t.Errorf("open %v, groups %d, %d rows; want 20000 stmt, %d, 100", p.Open, p.Groups, len(p.Resources), len(stmtOpeners))
	}
}

// HEAD answers with the headers alone, without reading the pools: its
// cost does not grow with the resources open.
func TestPageHeadReadsNothing(t *testing.T) {
	db := openPool(t, "page-head")
	openStmts(t, db, 2000)
	for _, c := range []struct{ target, ct string }{
		{"/", "text/html; charset=utf-8"},
		{"/?format=json", "application/json; charset=utf-8"},
	} {
		w := get(t, "HEAD", c.target)
		if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Type") != c.ct {
			t.Errorf("HEAD %s: %d, %d bytes, %q; want 200, none, %q", c.target, w.Code, w.Body.Len(), w.Header().Get("Content-Type"), c.ct)
		}
	}
	if w := get(t, "HEAD", "/?limit=0"); w.Code != http.StatusBadRequest {
		t.Errorf("HEAD with limit=0: %d; want 400", w.Code)
	}
	h := leak.Handler()
	req := httptest.NewRequest("HEAD", "/", nil)
	allocs := testing.AllocsPerRun(20, func() { h.ServeHTTP(httptest.NewRecorder(), req) })
	if allocs > 100 {
		t.Errorf("HEAD: %.0f allocations with 2000 statements open; want at most 100 (the pools are not read)", allocs)
	}
}

// SQL text in the HTML page has no control characters, no bidirectional
// controls and no invalid UTF-8; the JSON carries what the application
// ran.
func TestPageStripsControls(t *testing.T) {
	db := openPool(t, "page-controls")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = "SELECT '\x00\x1b[31m\u202eevil\xff\xfe ok\ttab\nline \ufffd kept'"
	tx.Exec(q)

	body := get(t, "GET", "/").Body.String()
	const want = "SELECT &#39;[31mevil ok tab line \ufffd kept&#39;"
	if !strings.Contains(body, want) {
		t.Errorf("the page lacks %q", want)
	}
	for _, bad := range []string{"\x00", "\x1b", "\u202e", "\xff", "\t"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	doc := decodePage(t, get(t, "GET", "/?format=json"))
	p := doc.Pools[poolNamed(t, doc, "page-controls")]
	if len(p.Resources) == 0 || p.Resources[0].LastQuery != string([]rune(q)) {
		t.Errorf("JSON: %+v; want the statement as run (invalid bytes as U+FFFD)", p.Resources)
	}
}
