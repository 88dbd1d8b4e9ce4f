package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sqlwatch/sqlwatch/leak"
)

// A scenario provokes one leak on purpose, by sending requests to the
// running service, so that the leak is opened by a handler in
// handlers.go and the report names that handler's line.
//
// To add a scenario, write (or break) a handler in handlers.go, route it
// in server.routes, and add one entry to scenarios below.
type scenario struct {
	name        string
	description string    // one line, shown in the usage message
	kind        leak.Kind // the report the scenario must produce
	requests    []request // sent to the service one after the other

	// alert, when true, means the scenario must produce a pool-wait
	// alert (from leak.Monitor) listing holders in handlers.go, instead
	// of a leak report of kind.
	alert bool
	// maxOpen, when positive, replaces the pool's MaxOpenConns.
	maxOpen int
	// misuse, when set, means the scenario must produce a misuse report
	// of that kind (leak.MisuseTxBypass, ...) whose origin is in
	// handlers.go, instead of a leak report.
	misuse string
	// notOn lists the -driver values the scenario cannot run on.
	notOn []string

	// drive, when set, replaces sending requests, for scenarios that need
	// more than a sequence of requests (concurrent clients, a request
	// left hanging, ...).
	drive func(ctx context.Context, c *client) error
}

// request is one HTTP request a scenario or the demo sends.
type request struct {
	method, path string
	status       int // the status the handler must answer with
}

// scenarios lists the leak scenarios, in the order the demo runs them.
var scenarios = []scenario{
	{
		name:        "txleak",
		description: "POST /orders without a quantity: the handler answers 400 without Commit or Rollback",
		kind:        leak.KindTx,
		requests:    []request{{http.MethodPost, "/orders?item=widget", http.StatusBadRequest}},
	},
	{
		name:        "connleak",
		description: "GET /report with an unknown period: the handler returns before conn.Close()",
		kind:        leak.KindConn,
		requests:    []request{{http.MethodGet, "/report?period=month", http.StatusBadRequest}},
	},
	{
		name:        "rowsleak",
		description: "GET /export with an unsupported format: the handler returns before rows.Close()",
		kind:        leak.KindRows,
		requests:    []request{{http.MethodGet, "/export?format=xml", http.StatusBadRequest}},
	},
	{
		name:        "stall",
		description: "MaxOpenConns(2): two GET /stock for a missing item leak a tx each, then GET /items waits for a connection; the pool alert names both holders",
		alert:       true,
		maxOpen:     2,
		drive: func(ctx context.Context, c *client) error {
			leakTx := request{http.MethodGet, "/stock?item=nonesuch", http.StatusNotFound}
			for range 2 {
				if err := c.do(ctx, leakTx); err != nil {
					return err
				}
			}
			// The third request blocks in database/sql, waiting for a
			// connection that never comes back; it is left waiting until
			// ctx ends.
			go c.do(ctx, request{http.MethodGet, "/items", 0})
			return nil
		},
	},
	{
		name:        "bypass",
		description: "POST /rename: the handler begins a tx, then updates through the pool instead of the tx (the gorm incident)",
		misuse:      leak.MisuseTxBypass,
		requests:    []request{{http.MethodPost, "/rename?id=1&name=renamed", http.StatusOK}},
	},
	{
		name:        "concurrent",
		description: "GET /summary: goroutines share one tx while its rows are open (MySQL: busy buffer)",
		misuse:      leak.MisuseConcurrent,
		requests: []request{
			{http.MethodPost, "/orders?item=summary&quantity=1", http.StatusCreated},
			{http.MethodPost, "/orders?item=summary&quantity=2", http.StatusCreated},
			{http.MethodGet, "/summary", 0},
		},
	},
	{
		name:        "locked",
		description: "two POST /restock at once: the second times out on the first's lock (SQLite: database is locked)",
		misuse:      leak.MisuseLockConflict,
		drive: func(ctx context.Context, c *client) error {
			var it struct{ ID int64 }
			if err := c.doJSON(ctx, request{http.MethodPost, "/orders?item=restock&quantity=1", http.StatusCreated}, &it); err != nil {
				return err
			}
			restock := fmt.Sprintf("/restock?id=%d", it.ID)
			first := make(chan error, 1)
			go func() { first <- c.do(ctx, request{http.MethodPost, restock, http.StatusNoContent}) }()
			time.Sleep(300 * time.Millisecond) // the first holds the lock
			if err := c.do(ctx, request{http.MethodPost, restock, http.StatusInternalServerError}); err != nil {
				return err
			}
			return <-first
		},
	},
	{
		name:        "killed",
		description: "GET /audit: the handler's server session is killed while its tx is open",
		misuse:      leak.MisuseConnKilled,
		notOn:       []string{"sqlite"},
		requests:    []request{{http.MethodGet, "/audit", http.StatusInternalServerError}},
	},
}

// goodTraffic is what the demo sends before the scenarios: the correct
// paths of every handler, which leave nothing open.
var goodTraffic = []request{
	{http.MethodPost, "/orders?item=widget&quantity=2", http.StatusCreated},
	{http.MethodPost, "/orders?item=gadget&quantity=1", http.StatusCreated},
	{http.MethodGet, "/items", http.StatusOK},
	{http.MethodGet, "/report?period=week", http.StatusOK},
	{http.MethodGet, "/export?format=csv", http.StatusOK},
	{http.MethodGet, "/export?format=json", http.StatusOK},
}

// findScenario returns the scenario called name.
func findScenario(name string) (scenario, bool) {
	i := slices.IndexFunc(scenarios, func(sc scenario) bool { return sc.name == name })
	if i < 0 {
		return scenario{}, false
	}
	return scenarios[i], true
}

// scenarioNames lists the scenarios' names.
func scenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, sc := range scenarios {
		names[i] = sc.name
	}
	return names
}

// scenarioHelp describes the scenarios for the usage message.
func scenarioHelp() string {
	var b strings.Builder
	for _, sc := range scenarios {
		what := sc.kind.String()
		switch {
		case sc.alert:
			what = "pool"
		case sc.misuse != "":
			what = "misuse"
		}
		fmt.Fprintf(&b, "  %-10s %-5s %s\n", sc.name, what, sc.description)
	}
	return b.String()
}

// run drives the scenario against the service.
func (sc scenario) run(ctx context.Context, c *client) error {
	if sc.drive != nil {
		return sc.drive(ctx, c)
	}
	for _, req := range sc.requests {
		if err := c.do(ctx, req); err != nil {
			return err
		}
	}
	return nil
}

// client sends requests to the running service.
type client struct {
	base string // "http://127.0.0.1:PORT"
	hc   *http.Client
	// sent, when set, is told about every answered request.
	sent func(req request, status int)
}

// do sends req and checks the status it gets.
func (c *client) do(ctx context.Context, req request) error { return c.doJSON(ctx, req, nil) }

// doJSON sends req, checks the status it gets and, when v is not nil,
// decodes the JSON body into v.
func (c *client) doJSON(ctx context.Context, req request, v any) error {
	hr, err := http.NewRequestWithContext(ctx, req.method, c.base+req.path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return fmt.Errorf("%s %s: %w", req.method, req.path, err)
		}
	}
	io.Copy(io.Discard, resp.Body)
	if c.sent != nil {
		c.sent(req, resp.StatusCode)
	}
	if req.status != 0 && resp.StatusCode != req.status {
		return fmt.Errorf("%s %s: status %d, want %d", req.method, req.path, resp.StatusCode, req.status)
	}
	return nil
}
