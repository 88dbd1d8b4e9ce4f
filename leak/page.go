package leak

import (
	"net/http"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// Handler serves a live page (HTML, or JSON with ?format=json) of every
// pool opened through sqlwatch and not closed: its counters and its open
// resources grouped by origin, oldest first. It exposes SQL text and file
// names: serve it only behind the protection net/http/pprof would have.
// Parameters, JSON shape and cost bounds: docs/live-page.md.
func Handler() http.Handler { return track.Handler() }
