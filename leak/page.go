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
// Its cost is bounded: each pool lists at most ?limit=N rows (1 to
// 10000, default 100), the oldest, and says how many there are in all;
// stacks are symbolized once per distinct call stack, and at most 1000
// distinct call stacks per pool (the oldest first): resources on further
// ones are counted as "unresolved", not listed. The counts of open
// resources per kind always cover them all.
//
// It answers GET and HEAD; HEAD checks the parameters and answers with
// the headers alone, without reading the pools. The page is HTML for
// people, readable without JavaScript: each row's stack is in a
// <details> element, SQL text is shown without control characters or
// invalid UTF-8, and ?refresh=N (seconds, 1 to 3600; 0 is off) makes the
// browser reload it every N seconds. ?format=json, or an Accept header
// that asks for application/json and not text/html, selects JSON for
// tools:
//
//	{
//	  "time": "2026-01-02T15:04:05.123Z",  // when the page was made (RFC 3339)
//	  "pools": [{                           // sorted by db_name
//	    "db_name": "items.db",
//	    "open": {"tx": 1, "conn": 1, "rows": 0, "stmt": 0},
//	    "thresholds": {"tx": "2s", "conn": "2s", "rows": "2s", "stmt": "0s"},  // "0s": not reported
//	    "stats": {"reported": 1, "reported_by_kind": {"tx": 1, "conn": 0, "rows": 0, "stmt": 0},
//	              "released": 0, "suppressed": 0, "dropped": 0, "panics": 0, "pool_alerts": 0},
//	    "groups": 2,                        // rows in all; the oldest "limit" are listed
//	    "limit": 100,
//	    "unresolved": 0,                    // open resources past the symbolization bound, not listed
//	    "resources": [{                     // one row per origin, oldest first
//	      "kind": "tx",                     // tx, conn, rows or stmt
//	      "count": 1,                       // open resources in the row; the rest describes the oldest
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
func Handler() http.Handler { return track.Handler() }
