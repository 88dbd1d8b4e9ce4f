package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/metrics"
)

const dashboardFile = "grafana/sqlwatch.json"

// dashboardQueries returns every PromQL expression of the dashboard (the
// panels' targets) and the queries of its template variables.
func dashboardQueries(t *testing.T) (exprs, vars []string) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			vars = append(vars, v.Definition)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("%s: %d queries; want at least 10", dashboardFile, len(exprs))
	}
	return exprs, vars
}

var metricName = regexp.MustCompile(`\b(?:sqlwatch|go_sql)_[a-z0-9_]+`)

// TestDashboardNames: every metric the dashboard names is one a pool
// registered with metrics.Register exports, and every family it exports
// is on the dashboard.
func TestDashboardNames(t *testing.T) {
	exprs, vars := dashboardQueries(t)
	if err := driver.RegisterByName("sqlite+dashboard", "sqlite"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite+dashboard", "file:"+filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewPedanticRegistry()
	if err := metrics.Register(reg, db); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		exported[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			exported[n+s] = true
		}
	}
	used := map[string]bool{}
	for _, e := range append(exprs, vars...) {
		for _, n := range metricName.FindAllString(e, -1) {
			used[n] = true
			if !exported[n] {
				t.Errorf("the dashboard names %s, which metrics.Register does not export (in %q)", n, e)
			}
		}
	}
	for _, mf := range mfs {
		n := mf.GetName()
		if !used[n] && !used[n+"_bucket"] && !used[n+"_count"] {
			t.Errorf("family %s is not on the dashboard", n)
		}
	}
}

// TestDashboardQueries runs every query of the dashboard against a real
// Prometheus, when SQLWATCH_PROMETHEUS_URL names one (.ci/prometheus-e2e.sh
// sets it to its Prometheus scraping the example, and SQLWATCH_DASHBOARD_VARS
// to "job=...,instance=...,db_name=..." of the example). Each must
// succeed, and each series selector in it must match at least one series:
// a query that names no existing series fails.
func TestDashboardQueries(t *testing.T) {
	base := os.Getenv("SQLWATCH_PROMETHEUS_URL")
	if base == "" {
		t.Skip("SQLWATCH_PROMETHEUS_URL is not set (run by .ci/prometheus-e2e.sh)")
	}
	vals := map[string]string{}
	for _, kv := range strings.Split(os.Getenv("SQLWATCH_DASHBOARD_VARS"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vals[k] = v
		}
	}
	for _, k := range []string{"job", "instance", "db_name"} {
		if vals[k] == "" {
			t.Fatalf("SQLWATCH_DASHBOARD_VARS lacks %s: %q", k, os.Getenv("SQLWATCH_DASHBOARD_VARS"))
		}
	}
	subst := func(e string) string {
		for k, v := range vals {
			// A backquoted PromQL string takes the regexp as it is.
			e = strings.ReplaceAll(e, `"$`+k+`"`, "`"+regexp.QuoteMeta(v)+"`")
		}
		return strings.ReplaceAll(e, "$__rate_interval", "30s")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	query := func(q string) (int, error) {
		resp, err := client.Get(base + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
		}
		if r.Status != "success" {
			return 0, fmt.Errorf("%s: %s", r.Status, r.Error)
		}
		return len(r.Data.Result), nil
	}
	selector := regexp.MustCompile(`\b(?:sqlwatch|go_sql)_[a-z0-9_]+(?:\{[^}]*\})?`)
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*([a-z_]+)\)$`)
	exprs, vars := dashboardQueries(t)
	for _, v := range vars {
		m := labelValues.FindStringSubmatch(v)
		if m == nil {
			t.Errorf("template variable query %q is not label_values(selector, label)", v)
			continue
		}
		exprs = append(exprs, fmt.Sprintf("group by (%s) (%s)", m[2], m[1]))
	}
	checked := 0
	for _, e := range exprs {
		q := subst(e)
		if _, err := query(q); err != nil {
			t.Errorf("query %q: %v", q, err)
			continue
		}
		for _, s := range selector.FindAllString(q, -1) {
			n, err := query(s)
			if err != nil {
				t.Errorf("selector %s of %q: %v", s, q, err)
			} else if n == 0 {
				t.Errorf("selector %s of %q matches no series", s, q)
			}
			checked++
		}
	}
	t.Logf("%d queries and %d selectors checked against %s", len(exprs), checked, base)
}
