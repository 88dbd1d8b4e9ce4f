package track

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
	"unicode/utf8"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/poolstats"
	"github.com/sqlwatch/sqlwatch/stack"
)

// The page's bounds.
const (
	maxRefresh   = 3600  // ?refresh=N, in seconds
	defaultLimit = 100   // rows listed per pool without ?limit=N
	maxLimit     = 10000 // ?limit=N
	maxStacks    = 1000  // distinct call stacks symbolized per pool
)

// Handler serves the live page; see leak.Handler, which documents it.
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
		// DBStats is the pool's sql.DBStats, when its *sql.DB was given
		// to NewMonitor or metrics.Register; absent otherwise.
		DBStats    *dbStatsJSON   `json:"db_stats,omitempty"`
		Groups     int            `json:"groups"`
		Limit      int            `json:"limit"`
		Unresolved int            `json:"unresolved"`
		Resources  []resourceJSON `json:"resources"`

		total int // open resources, for sorting
	}
	dbStatsJSON struct {
		MaxOpen             int     `json:"max_open"`
		Open                int     `json:"open"`
		InUse               int     `json:"in_use"`
		Idle                int     `json:"idle"`
		WaitCount           int64   `json:"wait_count"`
		WaitDuration        string  `json:"wait_duration"`
		WaitDurationSeconds float64 `json:"wait_duration_seconds"`
		MaxIdleClosed       int64   `json:"max_idle_closed"`
		MaxIdleTimeClosed   int64   `json:"max_idle_time_closed"`
		MaxLifetimeClosed   int64   `json:"max_lifetime_closed"`
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
		Count      int       `json:"count"`
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
		// Context is the oldest resource's context attributes (see
		// Report.Attrs).
		Context map[string]string `json:"context,omitempty"`
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
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			http.Error(w, "sqlwatch: limit must be a whole number of rows from 1 to "+strconv.Itoa(maxLimit), http.StatusBadRequest)
			return
		}
		limit = n
	}
	if asJSON {
		h.Set("Content-Type", "application/json; charset=utf-8")
	} else {
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	if r.Method == http.MethodHead {
		return // the headers alone: the pools are not read
	}

	page := buildPage(limit)
	var buf bytes.Buffer
	var err error
	if asJSON {
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		err = enc.Encode(page)
	} else {
		err = pageTemplate.Execute(&buf, htmlPage{pageJSON: page, Refresh: refresh, LimitSet: limit != defaultLimit, Limit: limit})
	}
	if err != nil {
		h.Del("Content-Type")
		http.Error(w, "sqlwatch: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
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

// buildPage reads every live pool, listing at most limit rows of each.
func buildPage(limit int) pageJSON {
	trackers := Trackers()
	page := pageJSON{Time: time.Now(), Pools: make([]poolJSON, 0, len(trackers))}
	for _, t := range trackers {
		page.Pools = append(page.Pools, describePool(t, limit))
	}
	sort.SliceStable(page.Pools, func(i, j int) bool {
		a, b := &page.Pools[i], &page.Pools[j]
		if a.DBName != b.DBName {
			return a.DBName < b.DBName
		}
		return a.total > b.total
	})
	return page
}

// stackKey groups the open resources that share their kind, their call
// stack and their place under a tx or rows, before any symbolization.
type stackKey struct {
	kind          Kind
	covered, inTx bool
	n             int
	pcs           [callstack.Depth]uintptr
}

// stackGroup is the open resources of one stackKey.
type stackGroup struct {
	count   int
	covered bool
	start   int64 // the oldest's Resource.start
	oldest  snapshot
}

// rowKey is what makes one row of the page: resources of one kind from
// one origin, alike in their place under a tx or rows.
type rowKey struct {
	kind          Kind
	origin, fn    string
	covered, inTx bool
}

// groups reads the open resources into stackGroups, copying only the
// oldest resource of each; it takes each shard's lock in turn.
func (t *Tracker) groups() map[stackKey]*stackGroup {
	m := map[stackKey]*stackGroup{}
	var k stackKey
	hidden := t.returnsHidden()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for r := s.head; r != nil; r = r.next {
			if unseen(hidden, r) {
				continue
			}
			pcs := r.stack.PCs()
			k.kind, k.n = r.kind, len(pcs)
			k.covered = r.covered()
			k.inTx = r.inTx
			copy(k.pcs[:], pcs)
			clear(k.pcs[len(pcs):])
			g := m[k]
			switch {
			case g == nil:
				m[k] = &stackGroup{count: 1, covered: k.covered, start: r.start, oldest: r.snapshot()}
			case r.start < g.start:
				g.count++
				g.start, g.oldest = r.start, r.snapshot()
			default:
				g.count++
			}
		}
		s.mu.Unlock()
	}
	return m
}

func describePool(t *Tracker, limit int) poolJSON {
	stacks := t.groups()
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
		Limit: limit,
	}
	if f := poolstats.Get(t); f != nil {
		s := f()
		p.DBStats = &dbStatsJSON{MaxOpen: s.MaxOpenConnections, Open: s.OpenConnections, InUse: s.InUse, Idle: s.Idle,
			WaitCount: s.WaitCount, WaitDuration: s.WaitDuration.String(), WaitDurationSeconds: s.WaitDuration.Seconds(),
			MaxIdleClosed: s.MaxIdleClosed, MaxIdleTimeClosed: s.MaxIdleTimeClosed, MaxLifetimeClosed: s.MaxLifetimeClosed}
	}
	for _, k := range Kinds {
		p.Open[k.String()] = 0
		p.Thresholds[k.String()] = t.Threshold(k).String()
		p.Stats.ReportedByKind[k.String()] = st.ReportedByKind[k]
	}

	// Oldest first: the stacks symbolized, when there are more than
	// maxStacks, are the oldest resources'.
	sorted := make([]*stackGroup, 0, len(stacks))
	for _, g := range stacks {
		sorted = append(sorted, g)
		p.Open[g.oldest.kind.String()] += g.count
		p.total += g.count
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.start != b.start {
			return a.start < b.start
		}
		return a.oldest.kind < b.oldest.kind // a tx before the conn it holds
	})

	rows := map[rowKey]int{} // index in p.Resources
	for i, g := range sorted {
		if i >= maxStacks {
			p.Unresolved += g.count
			continue
		}
		origin, fn, app := t.origin(&g.oldest.stack)
		k := rowKey{kind: g.oldest.kind, origin: origin, fn: fn, covered: g.covered, inTx: g.oldest.inTx}
		if j, ok := rows[k]; ok {
			p.Resources[j].Count += g.count // sorted: the row's oldest came first
			continue
		}
		rows[k] = len(p.Resources)
		rep := t.describeResolved(&g.oldest, now, origin, fn, app)
		p.Resources = append(p.Resources, resourceJSON{
			Kind:       rep.Kind.String(),
			Count:      g.count,
			Opened:     rep.Opened,
			Age:        round(rep.Age).String(),
			AgeSeconds: rep.Age.Seconds(),
			Origin:     rep.Origin,
			Func:       rep.Func,
			Goroutine:  rep.Goroutine,
			Statements: rep.Statements,
			LastQuery:  rep.LastQuery,
			Over:       rep.Threshold > 0 && rep.Age > rep.Threshold,
			Covered:    g.covered,
			InTx:       g.oldest.inTx,
			Stack:      frameStrings(app),
			Context:    attrMap(rep.Attrs),
		})
	}
	p.Groups = len(p.Resources)
	if len(p.Resources) > limit {
		p.Resources = p.Resources[:limit:limit]
	}
	if p.Resources == nil {
		p.Resources = []resourceJSON{}
	}
	return p
}

// origin symbolizes st: its origin ("unknown" when it has no application
// frame), the origin's function and the application's frames.
func (t *Tracker) origin(st *callstack.Stack) (origin, fn string, app []stack.Frame) {
	o, app, ok := t.cfg.Filter.Resolve(st)
	if !ok {
		return "unknown", "", nil
	}
	return o.Location(), o.Function, app
}

// describeResolved is describe for a snapshot whose stack is resolved.
func (t *Tracker) describeResolved(s *snapshot, now time.Time, origin, fn string, app []stack.Frame) Report {
	return Report{
		Kind:       s.kind,
		DBName:     t.cfg.DBName,
		Opened:     s.start,
		Age:        now.Sub(s.start),
		Threshold:  t.Threshold(s.kind),
		Statements: s.statements,
		LastQuery:  t.sqlText(s.lastQuery),
		Goroutine:  s.goid,
		Attrs:      s.attrs,
		Origin:     origin,
		Func:       fn,
		Stack:      app,
	}
}

// htmlPage is what the HTML template sees.
type htmlPage struct {
	pageJSON
	Refresh  int
	LimitSet bool // ?limit= differs from the default: links keep it
	Limit    int
}

// Kinds lists the kind names in order, for the template's tables.
func (htmlPage) Kinds() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.String()
	}
	return out
}

// MaxLimit and MaxStacks are the page's bounds, for its text.
func (htmlPage) MaxLimit() int  { return maxLimit }
func (htmlPage) MaxStacks() int { return maxStacks }

// Total is the number of the pool's open resources.
func (p poolJSON) Total() int { return p.total }

// RefreshChoices are the auto-refresh links offered.
func (htmlPage) RefreshChoices() []int { return []int{0, 2, 5, 10, 30} }

// printable returns s without control characters (tabs and line breaks
// become spaces), Unicode bidirectional controls or invalid UTF-8: SQL
// text is the application's, and may hold anything.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unprintable) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, c := range s {
		switch {
		case c == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 3 {
				b.WriteRune(c) // a U+FFFD written out in the text
			}
		case c == '\t' || c == '\n' || c == '\r':
			b.WriteByte(' ')
		case !unprintable(c):
			b.WriteRune(c)
		}
	}
	return b.String()
}

// unprintable reports whether c is a control character (C0, DEL, C1) or
// a Unicode bidirectional control, which can reorder the text shown.
func unprintable(c rune) bool {
	return c < 0x20 || c >= 0x7f && c < 0xa0 ||
		c >= 0x202a && c <= 0x202e || c >= 0x2066 && c <= 0x2069 ||
		c == 0x200e || c == 0x200f || c == 0x061c
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{"printable": printable}).Parse(`<!DOCTYPE html>
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
{{if eq . $.Refresh}}<strong>{{if .}}{{.}}s{{else}}off{{end}}</strong>{{else}}<a href="?refresh={{.}}{{if $.LimitSet}}&amp;limit={{$.Limit}}{{end}}">{{if .}}{{.}}s{{else}}off{{end}}</a>{{end}}{{end}}
| <a href="?format=json{{if $.LimitSet}}&amp;limit={{$.Limit}}{{end}}">JSON</a></nav>
{{- if not .Pools}}
<p>No pool opened through sqlwatch is open.</p>
{{- end}}
{{- range .Pools}}
{{- $pool := .}}
<section class="pool">
<h2>Pool <code>{{printable .DBName}}</code></h2>
<table class="figures">
<tr><th>kind</th>{{range $.Kinds}}<th>{{.}}</th>{{end}}</tr>
<tr><th>open</th>{{range $.Kinds}}<td class="num">{{index $pool.Open .}}</td>{{end}}</tr>
<tr><th>threshold</th>{{range $.Kinds}}<td class="num">{{index $pool.Thresholds .}}</td>{{end}}</tr>
<tr><th>reported</th>{{range $.Kinds}}<td class="num">{{index $pool.Stats.ReportedByKind .}}</td>{{end}}</tr>
</table>
<p class="muted">Leak reports {{.Stats.Reported}}, released {{.Stats.Released}}, suppressed {{.Stats.Suppressed}},
dropped {{.Stats.Dropped}}, pool alerts {{.Stats.PoolAlerts}}, panics recovered {{.Stats.Panics}}.</p>
{{- with .DBStats}}
<p class="dbstats">database/sql: {{.Open}} open ({{.InUse}} in use, {{.Idle}} idle) of {{if .MaxOpen}}at most {{.MaxOpen}}{{else}}no limit{{end}};
{{.WaitCount}} wait(s) for a connection, {{.WaitDuration}} in all; closed by the pool: {{.MaxIdleClosed}} over max idle,
{{.MaxIdleTimeClosed}} over max idle time, {{.MaxLifetimeClosed}} over max lifetime.</p>
{{- end}}
{{- if .Resources}}
<p class="listed">{{.Total}} open resource(s) in {{.Groups}} row(s), one per kind and origin
{{- if gt .Groups (len .Resources)}}; the oldest {{len .Resources}} shown (?limit=N shows up to N, at most {{$.MaxLimit}}){{end}}
{{- if .Unresolved}}; {{.Unresolved}} more on call stacks past the first {{$.MaxStacks}}, not listed{{end}}.</p>
<table class="resources">
<tr><th>kind</th><th>count</th><th>age</th><th>origin</th><th>goroutine</th><th>statements</th><th>last statement</th><th>stack</th></tr>
{{- range .Resources}}
<tr class="resource {{.Kind}}{{if .Over}} old{{end}}">
<td class="kind">{{.Kind}}{{if .Covered}}<br><span class="muted">under {{if .InTx}}a tx{{else}}rows{{end}}</span>{{end}}</td>
<td class="num count">{{.Count}}</td>
<td class="num" title="opened {{.Opened.Format "15:04:05.000"}}">{{.Age}}</td>
<td class="origin"><code>{{printable .Origin}}</code><br><span class="muted">{{printable .Func}}</span>
{{- range $k, $v := .Context}}<br><span class="context">{{printable $k}}={{printable $v}}</span>{{end}}</td>
<td class="num">{{.Goroutine}}</td>
<td class="num">{{if or (eq .Kind "tx") (eq .Kind "conn")}}{{.Statements}}{{end}}</td>
<td><code>{{printable .LastQuery}}</code></td>
<td><details><summary>{{len .Stack}} frame(s)</summary><pre>{{range .Stack}}{{printable .}}
{{end}}</pre></details></td>
</tr>
{{- end}}
</table>
{{- else if .Unresolved}}
<p>{{.Unresolved}} open resource(s) on call stacks past the first {{$.MaxStacks}}, not listed.</p>
{{- else}}
<p>Nothing open.</p>
{{- end}}
</section>
{{- end}}
</body>
</html>
`))
