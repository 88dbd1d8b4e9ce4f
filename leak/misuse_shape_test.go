package leak_test

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/testutil"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// keys returns the keys of a JSON object, sorted.
func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not a JSON object", v)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestMisuseReportShape pins the keys of each misuse report as a JSON
// slog handler writes it (the README's table of misuse report fields):
// the top-level keys every kind has, each kind's own, and the other
// side's object (tx, rows, holder), whose keys are the same for every
// kind and always all there. A renamed, added or missing key fails it.
func TestMisuseReportShape(t *testing.T) {
	common := []string{"time", "level", "msg", "kind", "db_name", "origin", "func", "stack", "goroutine", "query"}
	site := sorted("origin", "func", "goroutine", "query")
	holder := sorted("age", "origin", "func", "goroutine", "wrote", "last_query")

	cases := []struct {
		name   string
		kind   string
		report func(tr *track.Tracker)
		own    []string // top-level keys of the kind, beside common
		other  string   // the other side's object, "" if none
	}{
		{"tx_bypass", track.MisuseTxBypass, func(tr *track.Tracker) {
			tx := tr.Open(track.KindTx, 0) // no statement yet: the tx's query is "", still there
			e := &track.MisuseEvent{Kind: track.MisuseTxBypass, Query: "UPDATE t SET a = 1", HereGoroutine: tx.Goroutine(), There: tx}
			e.Here.Capture(0)
			tr.ReportMisuse(e)
		}, nil, "tx"},
		{"concurrent", track.MisuseConcurrent, func(tr *track.Tracker) {
			rows := tr.Open(track.KindRows, 0)
			rows.Note("SELECT a FROM t")
			e := &track.MisuseEvent{Kind: track.MisuseConcurrent, Query: "SELECT b FROM t", HereGoroutine: rows.Goroutine() + 1, There: rows}
			e.Here.Capture(0)
			tr.ReportMisuse(e)
		}, nil, "rows"},
		{"open_rows", track.MisuseOpenRows, func(tr *track.Tracker) {
			rows := tr.Open(track.KindRows, 0)
			rows.Note("SELECT a FROM t")
			e := &track.MisuseEvent{Kind: track.MisuseOpenRows, Query: "UPDATE t SET a = 1", HereGoroutine: rows.Goroutine(), There: rows}
			e.Here.Capture(0)
			tr.ReportMisuse(e)
		}, nil, "rows"},
		{"lock_conflict", track.MisuseLockConflict, func(tr *track.Tracker) {
			other := tr.Open(track.KindTx, 0)
			other.Note("UPDATE t SET a = 2 WHERE id = 1")
			self := tr.Open(track.KindTx, 0)
			e := &track.MisuseEvent{Kind: track.MisuseLockConflict, Class: "lock_timeout", Query: "UPDATE t SET a = 3 WHERE id = 1", HereGoroutine: 1, Self: self}
			e.Here.Capture(0)
			tr.ReportMisuse(e)
		}, []string{"class", "holders"}, ""},
		{"lock_conflict with no other tx", track.MisuseLockConflict, func(tr *track.Tracker) {
			e := &track.MisuseEvent{Kind: track.MisuseLockConflict, Class: "busy", Query: "UPDATE t SET a = 3", HereGoroutine: 1}
			e.Here.Capture(0)
			tr.ReportMisuse(e)
		}, []string{"class", "holders"}, ""},
		{"conn_killed", track.MisuseConnKilled, func(tr *track.Tracker) {
			tx := tr.Open(track.KindTx, 0)
			tx.Note("SELECT CONNECTION_ID()")
			e := &track.MisuseEvent{Kind: track.MisuseConnKilled, Class: "bad_conn", Query: "SELECT COUNT(*) FROM t", HereGoroutine: tx.Goroutine(),
				There: tx, Age: 2 * time.Second, Idle: 1500 * time.Millisecond, State: track.DeathInTx}
			e.Here.Capture(0)
			tr.ReportMisuse(e)
		}, []string{"class", "state", "age", "idle"}, "holder"},
		{"sql_tx_leak released", track.MisuseSQLTxLeak, func(tr *track.Tracker) {
			e := &track.MisuseEvent{Kind: track.MisuseSQLTxLeak, State: track.SQLTxReleased, HereGoroutine: 1,
				ThereGoroutine: 1, ThereQuery: "BEGIN", Age: time.Second}
			e.Here.Capture(0)
			e.ThereStack.Capture(0)
			tr.ReportMisuse(e)
		}, []string{"state", "age"}, "tx"},
		{"sql_tx_leak reused", track.MisuseSQLTxLeak, func(tr *track.Tracker) {
			e := &track.MisuseEvent{Kind: track.MisuseSQLTxLeak, State: track.SQLTxReused, Query: "UPDATE t SET a = 1", HereGoroutine: 2,
				ThereGoroutine: 1, ThereQuery: "SET autocommit = 0", Age: time.Second}
			e.Here.Capture(0)
			e.ThereStack.Capture(0)
			tr.ReportMisuse(e)
		}, []string{"state", "age"}, "tx"},
		{"conn_death_hint", "conn_death_hint", func(tr *track.Tracker) {
			for _, idle := range []time.Duration{28 * time.Second, 30 * time.Second, 31 * time.Second} {
				tr.ConnDied(track.DeathIdle, idle)
			}
		}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf testutil.LockedBuffer
			tr, err := track.NewTracker(track.Config{DBName: "orders", Interval: time.Hour, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			c.report(tr)
			tr.Stop() // logs the queue
			var line map[string]any
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				m := map[string]any{}
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
				if m["kind"] == c.kind {
					if line != nil {
						t.Fatalf("two %s lines:\n%s", c.kind, buf.String())
					}
					line = m
				}
			}
			if line == nil {
				t.Fatalf("no %s line:\n%s", c.kind, buf.String())
			}
			t.Log(buf.String())

			want := append(slices.Clone(common), c.own...)
			if c.kind == "conn_death_hint" {
				want = []string{"time", "level", "msg", "kind", "db_name", "idle", "deaths"}
			}
			if c.other != "" {
				want = append(want, c.other, c.other+"_stack")
			}
			if got := keys(t, line); !slices.Equal(got, sorted(want...)) {
				t.Errorf("top-level keys:\n got %v\nwant %v", got, sorted(want...))
			}
			if c.other != "" {
				if got := keys(t, line[c.other]); !slices.Equal(got, site) {
					t.Errorf("%s keys:\n got %v\nwant %v", c.other, got, site)
				}
				if st, ok := line[c.other+"_stack"].([]any); !ok || len(st) == 0 {
					t.Errorf("%s_stack: %v; want a list of frames", c.other, line[c.other+"_stack"])
				}
			}
			if _, ok := line["stack"]; ok {
				if st, ok := line["stack"].([]any); !ok || len(st) == 0 {
					t.Errorf("stack: %v; want a list of frames", line["stack"])
				}
			}
			if c.kind == track.MisuseLockConflict {
				hs, ok := line["holders"].([]any)
				if !ok {
					t.Fatalf("holders: %v; want a list", line["holders"])
				}
				for _, h := range hs {
					if got := keys(t, h); !slices.Equal(got, holder) {
						t.Errorf("holder keys:\n got %v\nwant %v", got, holder)
					}
				}
				if wantN := map[string]int{"lock_timeout": 1, "busy": 0}[line["class"].(string)]; len(hs) != wantN {
					t.Errorf("%d holders; want %d", len(hs), wantN)
				}
			}
		})
	}
}
