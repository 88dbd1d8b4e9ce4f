package leak

import (
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/track"
)

// This file is the test gate: [Check], [VerifyNone] and [VerifyTestMain]
// fail a test run that leaves a transaction, checked-out connection, result
// set or prepared statement open, the way go.uber.org/goleak fails one that
// leaves a goroutine running.

// defaultRetry is how long the gate waits, by default, for open resources
// to close before it reports them; see [RetryFor].
const defaultRetry = time.Second

// Polling during the retry window starts at gateMinPoll and doubles up to
// gateMaxPoll.
const (
	gateMinPoll = time.Millisecond
	gateMaxPoll = 20 * time.Millisecond
)

// TestingT is the part of [testing.T] (and [testing.TB]) the gate uses.
// When the value also has a Helper method, as *testing.T does, the gate
// calls it, so a failure is reported at the test's line.
type TestingT interface {
	Error(args ...any)
}

// TestingM is the part of [testing.M] that [VerifyTestMain] uses.
type TestingM interface {
	Run() int
}

// Option changes what the gate checks and how long it waits. Options are
// made by [IgnoreOrigin], [IgnoreFunc], [Pool] and [RetryFor].
type Option interface {
	apply(*gateOpts)
}

type gateOption func(*gateOpts)

func (f gateOption) apply(o *gateOpts) { f(o) }

// gateOpts is what the options set; build fills in the defaults.
type gateOpts struct {
	trackers []*track.Tracker // from Pool; nil means every live pool
	origins  []string
	funcs    []string
	retry    time.Duration
	retrySet bool
	errs     []string
}

func (o *gateOpts) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Sprintf(format, args...))
}

// nonEmpty records an error unless list is non-empty and holds no empty
// string (which would match every resource).
func (o *gateOpts) nonEmpty(option, what string, list []string) bool {
	if len(list) == 0 {
		o.fail("%s: no %s given", option, what)
		return false
	}
	for _, s := range list {
		if s == "" {
			o.fail("%s: an empty %s would match every resource", option, what)
			return false
		}
	}
	return true
}

// IgnoreOrigin ignores the resources whose origin (a "dir/file.go:LINE"
// string, as in [Report.Origin]) contains any of substrs, such as
// "cache/warm.go:" for one file or "cache/" for a directory. An empty
// substring, or none at all, is an error: it would ignore everything, or
// nothing.
func IgnoreOrigin(substrs ...string) Option {
	return gateOption(func(o *gateOpts) {
		if o.nonEmpty("leak.IgnoreOrigin", "origin", substrs) {
			o.origins = append(o.origins, substrs...)
		}
	})
}

// IgnoreFunc ignores the resources opened by any of the named functions
// (compared with [Report.Func], the function at the origin, fully
// qualified: "example.com/app/store.(*Cache).Warm"). An empty name, or
// none at all, is an error.
func IgnoreFunc(names ...string) Option {
	return gateOption(func(o *gateOpts) {
		if o.nonEmpty("leak.IgnoreFunc", "function name", names) {
			o.funcs = append(o.funcs, names...)
		}
	})
}

// Pool restricts the check to db's pool; give it several times to check
// several pools. Without Pool every pool opened through sqlwatch and not
// yet closed is checked. A pool named with Pool is checked even after
// DB.Close, which otherwise makes sqlwatch forget the pool. A nil db, or
// one not opened through sqlwatch, is an error.
func Pool(db *sql.DB) Option {
	return gateOption(func(o *gateOpts) {
		if db == nil {
			o.fail("leak.Pool: nil *sql.DB")
			return
		}
		p, ok := db.Driver().(interface{ Tracker() *track.Tracker })
		if !ok {
			o.fail("leak.Pool: the *sql.DB (driver %T) was not opened through sqlwatch", db.Driver())
			return
		}
		t := p.Tracker()
		for _, x := range o.trackers {
			if x == t {
				return
			}
		}
		o.trackers = append(o.trackers, t)
	})
}

// RetryFor sets how long the gate waits for open resources to close
// before it reports them (default 1s). database/sql closes some of them
// on goroutines of its own, such as the rollback of a transaction whose
// context was canceled, so a check made right away could report them.
// The wait ends as soon as nothing is open. If d is 0 the gate looks only
// once; a negative d, or RetryFor given twice with different values, is
// an error.
func RetryFor(d time.Duration) Option {
	return gateOption(func(o *gateOpts) {
		switch {
		case d < 0:
			o.fail("leak.RetryFor(%v): negative duration", d)
		case o.retrySet && o.retry != d:
			o.fail("leak.RetryFor given twice: %v, then %v", o.retry, d)
		default:
			o.retry, o.retrySet = d, true
		}
	})
}

// buildGateOpts applies opts over the defaults. The text of every invalid
// option is in the result's errs.
func buildGateOpts(opts []Option) *gateOpts {
	o := &gateOpts{retry: defaultRetry}
	for _, opt := range opts {
		if opt == nil {
			o.fail("nil leak.Option")
			continue
		}
		opt.apply(o)
	}
	return o
}

// errorText joins the option errors into one message.
func (o *gateOpts) errorText(fn string) string {
	return "sqlwatch: " + fn + ": invalid options:\n\t" + strings.Join(o.errs, "\n\t")
}

// VerifyNone fails t when a resource opened through sqlwatch is still
// open: a transaction, a checked-out connection, a result set or a
// prepared statement, on any live pool or on those named with [Pool]. It
// waits for them to close for up to the retry window first (see
// [RetryFor]). The failure is one call to t.Error listing every such
// resource with its kind, age, origin and stack.
//
// A connection held by an open transaction or result set is not listed
// on its own: the transaction or result set is. Resources opened before
// the test began are listed too; use [Check] to list only the test's own.
func VerifyNone(t TestingT, opts ...Option) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	o := buildGateOpts(opts)
	if len(o.errs) > 0 {
		t.Error(o.errorText("leak.VerifyNone"))
		return
	}
	if msg := o.find(nil); msg != "" {
		t.Error(msg)
	}
}

// Check notes which resources are open now and returns a function that
// fails t if a resource opened through sqlwatch since then is still open.
// Call it at the start of a test:
//
//	t.Cleanup(leak.Check(t, leak.Pool(db)))
//
// or
//
//	defer leak.Check(t)()
//
// The returned function waits for the test's resources to close for up
// to the retry window ([RetryFor]) and then reports those still open as
// [VerifyNone] does. Resources open when Check was called are never
// reported. Invalid options are reported by Check itself, and the
// returned function then does nothing.
//
// Without [Pool], every live pool is checked, including pools opened
// after Check; a pool is forgotten at DB.Close, so register the pool's
// Close first (cleanups run last-in first-out) or name it with Pool.
// Tests that share a pool and run in parallel see each other's
// resources: give each its own pool, named with Pool. Check, the
// function it returns and [VerifyNone] are safe for concurrent use.
func Check(t TestingT, opts ...Option) func() {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	o := buildGateOpts(opts)
	if len(o.errs) > 0 {
		t.Error(o.errorText("leak.Check"))
		return func() {}
	}
	before := make(map[track.ID]struct{})
	for _, tr := range o.pools() {
		tr.OpenIDs(before)
	}
	return func() {
		if h, ok := t.(interface{ Helper() }); ok {
			h.Helper()
		}
		if msg := o.find(before); msg != "" {
			t.Error(msg)
		}
	}
}

// VerifyTestMain runs the tests with m.Run and exits with its code; when
// the tests passed but a resource opened through sqlwatch is still open
// (as [VerifyNone] sees it), it prints the list on standard error and
// exits 1. Use it in TestMain:
//
//	func TestMain(m *testing.M) {
//		leak.VerifyTestMain(m)
//	}
//
// A failed run is not checked: its failures are reported already. Pools
// the tests closed are not checked; invalid options are printed and the
// process exits 1 before any test runs.
func VerifyTestMain(m TestingM, opts ...Option) {
	o := buildGateOpts(opts)
	if len(o.errs) > 0 {
		fmt.Fprintln(os.Stderr, o.errorText("leak.VerifyTestMain"))
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if msg := o.find(nil); msg != "" {
			fmt.Fprintf(os.Stderr, "sqlwatch: errors on successful test run: %s\n", msg)
			code = 1
		}
	}
	os.Exit(code)
}

// pools returns the trackers to check.
func (o *gateOpts) pools() []*track.Tracker {
	if o.trackers != nil {
		return o.trackers
	}
	return track.Trackers()
}

// find waits up to the retry window for the resources not in before to
// close, and describes those still open; "" means none.
func (o *gateOpts) find(before map[track.ID]struct{}) string {
	deadline := time.Now().Add(o.retry)
	poll := gateMinPoll
	for {
		open := o.open(before)
		if len(open) == 0 {
			return ""
		}
		if !time.Now().Before(deadline) {
			return gateMessage(open, len(o.pools()) > 1)
		}
		time.Sleep(min(poll, time.Until(deadline)))
		poll = min(2*poll, gateMaxPoll)
	}
}

// open lists the resources to report now, oldest first.
func (o *gateOpts) open(before map[track.ID]struct{}) []Report {
	var out []Report
	for _, tr := range o.pools() {
		for _, rep := range tr.Uncovered(before) {
			if !o.ignored(&rep) {
				out = append(out, rep)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].DBName != out[j].DBName {
			return out[i].DBName < out[j].DBName
		}
		return out[i].Opened.Before(out[j].Opened)
	})
	return out
}

func (o *gateOpts) ignored(rep *Report) bool {
	for _, s := range o.origins {
		if strings.Contains(rep.Origin, s) {
			return true
		}
	}
	for _, f := range o.funcs {
		if rep.Func == f {
			return true
		}
	}
	return false
}

// gateMessage is the failure: a header line, then one block per resource.
func gateMessage(reps []Report, poolNames bool) string {
	var b strings.Builder
	noun := "resources"
	if len(reps) == 1 {
		noun = "resource"
	}
	fmt.Fprintf(&b, "found %d unexpected open database %s opened through sqlwatch:", len(reps), noun)
	for i := range reps {
		r := &reps[i]
		fmt.Fprintf(&b, "\n[%s] open for %s, %s %s", r.Kind, track.Round(r.Age), track.Verb(r.Kind), r.Origin)
		if r.Func != "" {
			fmt.Fprintf(&b, " (%s)", shortFunc(r.Func))
		}
		if poolNames {
			fmt.Fprintf(&b, " on pool %q", r.DBName)
		}
		fmt.Fprintf(&b, ", goroutine %d", r.Goroutine)
		if len(r.Attrs) > 0 {
			fmt.Fprintf(&b, "\n    context: %s", track.FormatAttrs(r.Attrs))
		}
		switch {
		case r.Kind == KindTx || r.Kind == KindConn:
			fmt.Fprintf(&b, "\n    statements: %d", r.Statements)
			if r.LastQuery != "" {
				fmt.Fprintf(&b, "; last query: %s", r.LastQuery)
			}
		case r.LastQuery != "":
			fmt.Fprintf(&b, "\n    query: %s", r.LastQuery)
		}
		for _, f := range r.Stack {
			fmt.Fprintf(&b, "\n    %s\n        %s", f.Function, f.Location())
		}
	}
	return b.String()
}

// shortFunc drops the import path from a function name, keeping the
// package name: "github.com/a/b.(*T).M" gives "b.(*T).M".
func shortFunc(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	if slash < 0 {
		return fn
	}
	return fn[slash+1:]
}
