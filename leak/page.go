package leak

import (
	"bytes"
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxRefresh bounds the page's ?refresh=N, in seconds.
const maxRefresh = 3600

// Handler returns an http.Handler serving a live page of every pool opened
// through sqlwatch and not yet closed ([Trackers]), sorted by name: the
// pool's figures (open resources and threshold per kind, the counters of
// [Tracker.Stats]) and every open resource, oldest first, with its kind,
// age, origin, function, goroutine, statement count, last statement
// (truncated, never argument values) and stack. Nothing is served unless
// the handler is mounted:
//
//	mux.Handle("/debug/sqlwatch", leak.Handler())
//
// The page exposes SQL text and the application's file names. Serve it
// only where net/http/pprof would be served, behind the same protection
// (an admin listener, authentication); never on a public address.
//
// It answers GET and HEAD. The page is HTML for people, readable without
// JavaScript: each resource's stack is in a <details> element, and
// ?refresh=N (seconds, 1 to 3600; 0 is off) makes the browser reload it
// every N seconds. ?format=json, or an Accept header that asks for
// application/json and not text/html, selects JSON for tools:
//
//	{
//	  "time": "2026-01-02T15:04:05.123Z",  // when the page was made (RFC 3339)
//	  "pools": [{                           // sorted by db_name
//	    "db_name": "items.db",
//	    "open": {"tx": 1, "conn": 1, "rows": 0, "stmt": 0},
//	    "thresholds": {"tx": "2s", "conn": "2s", "rows": "2s", "stmt": "0s"},  // "0s": not reported
//	    "stats": {"reported": 1, "reported_by_kind": {"tx": 1, "conn": 0, "rows": 0, "stmt": 0},
//	              "released": 0, "suppressed": 0, "dropped": 0, "panics": 0, "pool_alerts": 0},
//	    "resources": [{                     // oldest first
//	      "kind": "tx",                     // tx, conn, rows or stmt
//	      "opened": "2026-01-02T15:04:02.6Z", // on the pool's clock
//	      "age": "2.5s",                    // rounded Go duration
//	      "age_seconds": 2.5,
//	      "origin": "example/handlers.go:93",
//	      "func": "main.(*server).createOrder",
//	      "goroutine": 40,
//	      "statements": 1,                  // statements run (tx and conn)
//	      "last_query": "INSERT INTO sqlwatch_items (id, name) VALUES (?, ?)",
//	      "over_threshold": true,           // older than its kind's threshold
//	      "covered": false,                 // a conn held by an open tx or rows listed on its own
//	      "in_tx": false,                   // a conn held by an open tx
//	      "stack": ["main.(*server).createOrder example/handlers.go:93", "..."]
//	    }]
//	  }]
//	}
//
// Counts and lists are read pool by pool, shard by shard, without
// stopping the pools, so the figures of a busy pool may disagree a little.
// The handler is safe for concurrent use.
func Handler() http.Handler { return pageHandler{} }

type pageHandler struct{}

// The JSON shape documented on Handler.
type (
	pageJSON struct {
		Time  time.Time  `json:"time"`
		Pools []poolJSON `json:"pools"`
	}
	poolJSON struct {
		DBName     string            `json:"db_name"`
		Open       map[string]int    `json:"open"`
		Thresholds map[string]string `json:"thresholds"`
		Stats      statsJSON         `json:"stats"`
		Resources  []resourceJSON    `json:"resources"`
	}
	statsJSON struct {
		Reported       int64            `json:"reported"`
		ReportedByKind map[string]int64 `json:"reported_by_kind"`
		Released       int64            `json:"released"`
		Suppressed     int64            `json:"suppressed"`
		Dropped        int64            `json:"dropped"`
		Panics         int64            `json:"panics"`
		PoolAlerts     int64            `json:"pool_alerts"`
	}
	resourceJSON struct {
		Kind       string    `json:"kind"`
		Opened     time.Time `json:"opened"`
		Age        string    `json:"age"`
		AgeSeconds float64   `json:"age_seconds"`
		Origin     string    `json:"origin"`
		Func       string    `json:"func"`
		Goroutine  int64     `json:"goroutine"`
		Statements int64     `json:"statements"`
		LastQuery  string    `json:"last_query"`
		Over       bool      `json:"over_threshold"`
		Covered    bool      `json:"covered"`
		InTx       bool      `json:"in_tx"`
		Stack      []string  `json:"stack"`
	}
)

func (pageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "sqlwatch: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	asJSON := false
	switch f := q.Get("format"); f {
	case "json":
		asJSON = true
	case "html":
	case "":
		asJSON = wantsJSON(r.Header.Values("Accept"))
	default:
		http.Error(w, "sqlwatch: format must be html or json, not "+strconv.Quote(f), http.StatusBadRequest)
		return
	}
	refresh := 0
	if s := q.Get("refresh"); s != "" && !asJSON {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxRefresh {
			http.Error(w, "sqlwatch: refresh must be a whole number of seconds from 0 to "+strconv.Itoa(maxRefresh), http.StatusBadRequest)
			return
		}
		refresh = n
	}

	page := buildPage()
	var buf bytes.Buffer
	if asJSON {
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(page); err != nil {
			http.Error(w, "sqlwatch: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
	} else {
		if err := pageTemplate.Execute(&buf, htmlPage{pageJSON: page, Refresh: refresh}); err != nil {
			http.Error(w, "sqlwatch: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// wantsJSON reports whether an Accept header asks for JSON and not HTML.
func wantsJSON(accept []string) bool {
	js, html := false, false
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || params["q"] == "0" {
				continue
			}
			switch mt {
			case "application/json":
				js = true
			case "text/html":
				html = true
			}
		}
	}
	return js && !html
}

// buildPage reads every live pool.
func buildPage() pageJSON {
	trackers := Trackers()
	page := pageJSON{Time: time.Now(), Pools: make([]poolJSON, 0, len(trackers))}
	for _, t := range trackers {
		page.Pools = append(page.Pools, describePool(t))
	}
	sort.SliceStable(page.Pools, func(i, j int) bool {
		a, b := &page.Pools[i], &page.Pools[j]
		if a.DBName != b.DBName {
			return a.DBName < b.DBName
		}
		return len(a.Resources) > len(b.Resources)
	})
	return page
}

func describePool(t *Tracker) poolJSON {
	var covered []bool // parallel to the snapshots: collect keeps pick's order
	snaps := t.collect(func(r *Resource) bool {
		covered = append(covered, r.covered())
		return true
	})
	now := t.cfg.Now()
	st := t.Stats()
	p := poolJSON{
		DBName:     t.DBName(),
		Open:       make(map[string]int, len(Kinds)),
		Thresholds: make(map[string]string, len(Kinds)),
		Stats: statsJSON{
			Reported:       st.Reported,
			ReportedByKind: make(map[string]int64, len(Kinds)),
			Released:       st.Released,
			Suppressed:     st.Suppressed,
			Dropped:        st.Dropped,
			Panics:         st.Panics,
			PoolAlerts:     st.PoolAlerts,
		},
		Resources: make([]resourceJSON, 0, len(snaps)),
	}
	for _, k := range Kinds {
		p.Open[k.String()] = 0
		p.Thresholds[k.String()] = t.Threshold(k).String()
		p.Stats.ReportedByKind[k.String()] = st.ReportedByKind[k]
	}
	for i := range snaps {
		s := &snaps[i]
		rep := t.describe(s, now)
		p.Open[rep.Kind.String()]++
		p.Resources = append(p.Resources, resourceJSON{
			Kind:       rep.Kind.String(),
			Opened:     rep.Opened,
			Age:        round(rep.Age).String(),
			AgeSeconds: rep.Age.Seconds(),
			Origin:     rep.Origin,
			Func:       rep.Func,
			Goroutine:  rep.Goroutine,
			Statements: rep.Statements,
			LastQuery:  rep.LastQuery,
			Over:       rep.Threshold > 0 && rep.Age > rep.Threshold,
			Covered:    covered[i],
			InTx:       s.inTx,
			Stack:      frameStrings(rep.Stack),
		})
	}
	sort.SliceStable(p.Resources, func(i, j int) bool { return p.Resources[i].Opened.Before(p.Resources[j].Opened) })
	return p
}

// htmlPage is what the HTML template sees.
type htmlPage struct {
	pageJSON
	Refresh int
}

// Kinds lists the kind names in order, for the template's tables.
func (htmlPage) Kinds() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.String()
	}
	return out
}

// RefreshChoices are the auto-refresh links offered.
func (htmlPage) RefreshChoices() []int { return []int{0, 2, 5, 10, 30} }

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{- if .Refresh}}
<meta http-equiv="refresh" content="{{.Refresh}}">
{{- end}}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sqlwatch: open database resources</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, monospace; font-size: .92em; }
pre { margin: .3em 0; white-space: pre-wrap; }
.kind { font-weight: bold; }
td.kind, td.num, td.origin code, summary { white-space: nowrap; }
.old { background: #fff0f0; }
.muted { color: #666; }
nav a { margin-right: .6em; }
</style>
</head>
<body>
<h1>sqlwatch: open database resources</h1>
<p class="muted">As of {{.Time.Format "2006-01-02 15:04:05.000 MST"}}; {{len .Pools}} pool(s).
This page shows SQL text: serve it only behind the protection you give net/http/pprof.</p>
<nav>Auto-refresh:{{range .RefreshChoices}}
{{if eq . $.Refresh}}<strong>{{if .}}{{.}}s{{else}}off{{end}}</strong>{{else}}<a href="?refresh={{.}}">{{if .}}{{.}}s{{else}}off{{end}}</a>{{end}}{{end}}
| <a href="?format=json">JSON</a></nav>
{{- if not .Pools}}
<p>No pool opened through sqlwatch is open.</p>
{{- end}}
{{- range .Pools}}
{{- $pool := .}}
<section class="pool">
<h2>Pool <code>{{.DBName}}</code></h2>
<table class="figures">
<tr><th>kind</th>{{range $.Kinds}}<th>{{.}}</th>{{end}}</tr>
<tr><th>open</th>{{range $.Kinds}}<td class="num">{{index $pool.Open .}}</td>{{end}}</tr>
<tr><th>threshold</th>{{range $.Kinds}}<td class="num">{{index $pool.Thresholds .}}</td>{{end}}</tr>
<tr><th>reported</th>{{range $.Kinds}}<td class="num">{{index $pool.Stats.ReportedByKind .}}</td>{{end}}</tr>
</table>
<p class="muted">Leak reports {{.Stats.Reported}}, released {{.Stats.Released}}, suppressed {{.Stats.Suppressed}},
dropped {{.Stats.Dropped}}, pool alerts {{.Stats.PoolAlerts}}, panics recovered {{.Stats.Panics}}.</p>
{{- if .Resources}}
<table class="resources">
<tr><th>kind</th><th>age</th><th>origin</th><th>goroutine</th><th>statements</th><th>last statement</th><th>stack</th></tr>
{{- range .Resources}}
<tr class="resource {{.Kind}}{{if .Over}} old{{end}}">
<td class="kind">{{.Kind}}{{if .Covered}}<br><span class="muted">under {{if .InTx}}a tx{{else}}rows{{end}}</span>{{end}}</td>
<td class="num" title="opened {{.Opened.Format "15:04:05.000"}}">{{.Age}}</td>
<td class="origin"><code>{{.Origin}}</code><br><span class="muted">{{.Func}}</span></td>
<td class="num">{{.Goroutine}}</td>
<td class="num">{{if or (eq .Kind "tx") (eq .Kind "conn")}}{{.Statements}}{{end}}</td>
<td><code>{{.LastQuery}}</code></td>
<td><details><summary>{{len .Stack}} frame(s)</summary><pre>{{range .Stack}}{{.}}
{{end}}</pre></details></td>
</tr>
{{- end}}
</table>
{{- else}}
<p>Nothing open.</p>
{{- end}}
</section>
{{- end}}
</body>
</html>
`))
