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

// TestingT is the part of [testing.T] the gate uses; a Helper method, if
// any, is called too.
type TestingT interface {
	Error(args ...any)
}

// TestingM is the part of [testing.M] that [VerifyTestMain] uses.
type TestingM interface {
	Run() int
}

// Option changes what the gate checks and how long it waits.
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

// IgnoreOrigin ignores the resources whose [Report.Origin] contains any of
// substrs, such as "cache/warm.go:" or "cache/". None, or an empty one, is an
// error.
func IgnoreOrigin(substrs ...string) Option {
	return gateOption(func(o *gateOpts) {
		if o.nonEmpty("leak.IgnoreOrigin", "origin", substrs) {
			o.origins = append(o.origins, substrs...)
		}
	})
}

// IgnoreFunc ignores the resources whose [Report.Func] (fully qualified,
// "example.com/app/store.(*Cache).Warm") is one of names. None, or an empty
// one, is an error.
func IgnoreFunc(names ...string) Option {
	return gateOption(func(o *gateOpts) {
		if o.nonEmpty("leak.IgnoreFunc", "function name", names) {
			o.funcs = append(o.funcs, names...)
		}
	})
}

// Pool restricts the check to db's pool (repeat it for several), checked
// even after DB.Close. A nil db, or one not opened through sqlwatch, is an
// error.
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
// before it reports them (default 1s; 0 looks once), since database/sql
// closes some on goroutines of its own. A negative d, or two different
// values, is an error.
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

// VerifyNone fails t, with one t.Error listing each resource's kind, age,
// origin and stack, when a resource opened through sqlwatch is still open
// after the retry window, on every live pool or those named with [Pool]. A
// conn held by an open tx or rows is listed as that tx or rows.
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

// Check notes what is open now and returns a function that fails t, as
// [VerifyNone] does, if a resource opened since is still open:
//
//	t.Cleanup(leak.Check(t, leak.Pool(db)))
//
// Without [Pool], pools opened later are checked too, and a pool is forgotten
// at DB.Close. Invalid options are reported by Check itself. The README's
// "Test gate" covers cleanup order and parallel tests.
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

// VerifyTestMain runs m.Run and exits with its code, or with 1 after a
// passing run that left a resource open (listed on standard error, as
// [VerifyNone] sees it) or given invalid options. Call it in TestMain.
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
