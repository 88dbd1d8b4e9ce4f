package leak

import (
	"net/http"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Handler returns an http.Handler serving a live page of every pool opened
// through sqlwatch and not yet closed, sorted by name: the pool's figures (open resources and threshold per kind, the counters of
// [StatsOf]) and its open resources grouped by origin, oldest first.
// Resources of one kind opened at the same line (the same origin and
// function, and alike in being held under a tx or rows) make one row with
// their count, described by the oldest of them: its age, origin, function,
// goroutine, statement count, last statement (truncated, never argument
// values) and stack. Nothing is served unless the handler is mounted:
//
//	mux.Handle("/debug/sqlwatch", leak.Handler())
//
// The page exposes SQL text and the application's file names. Serve it
// only where net/http/pprof would be served, behind the same protection
// (an admin listener, authentication); never on a public address.
//
// Each pool lists at most ?limit=N rows (1 to 10000, default 100), the
// oldest; ?refresh=N (seconds) makes the browser reload the page;
// ?format=json, or an Accept header that asks for application/json and
// not text/html, selects JSON for tools. The JSON shape, the bounds on
// the page's cost and the parameters are in docs/live-page.md. The
// handler answers GET and HEAD and is safe for concurrent use.
func Handler() http.Handler { return track.Handler() }
