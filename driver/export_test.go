package driver

import (
	"database/sql"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// TrackerOf is trackerOf, for the external tests.
func TrackerOf(db *sql.DB) *track.Tracker { return trackerOf(db) }
