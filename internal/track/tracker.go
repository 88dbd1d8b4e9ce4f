package track

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/goid"
	"github.com/sqlwatch/sqlwatch/internal/nanosum"
	"github.com/sqlwatch/sqlwatch/internal/poolstats"
	"github.com/sqlwatch/sqlwatch/internal/redact"
	"github.com/sqlwatch/sqlwatch/internal/sqltext"
)

// Default settings; see [Config].
const (
	DefaultTxThreshold   = time.Minute
	DefaultConnThreshold = time.Minute
	DefaultRowsThreshold = time.Minute
	DefaultStmtThreshold = time.Duration(0) // prepared statements often live as long as the process
	DefaultInterval      = time.Second
	DefaultReportBurst   = 10
	DefaultReportsPerMin = 60
	DefaultQueryLimit    = 200
	minInterval          = 10 * time.Millisecond
)

// ErrInvalidConfig is returned (wrapped) by [NewTracker] for a negative
// threshold, interval, limit or burst.
var ErrInvalidConfig = errors.New("sqlwatch: invalid configuration")

// Config configures a Tracker. The zero value of each field selects its
// default.
type Config struct {
	// DBName names the pool in reports and metrics.
	DBName string
	// Thresholds per kind; a kind whose threshold is zero is tracked but
	// never reported. Defaults: DefaultTxThreshold, DefaultConnThreshold,
	// DefaultRowsThreshold, DefaultStmtThreshold (off). Set
	// ThresholdsSet[k] to use Thresholds[k] even when it is zero.
	Thresholds    [numKinds]time.Duration
	ThresholdsSet [numKinds]bool
	// Interval between watchdog scans. Default DefaultInterval, lowered
	// to half the smallest enabled threshold (at least 10ms) when that is
	// shorter.
	Interval time.Duration
	// Logger receives the reports. Default slog.Default().
	Logger *slog.Logger
	// OnReport, when set, receives every logged report (leaks and
	// releases) as a value, on the watchdog goroutine (a release after
	// Stop: on a goroutine of its own, see [Tracker.Close]). A panic in
	// it is recovered and counted.
	OnReport func(Report)
	// OnMisuse, when set, receives every misuse report the watchdog logs,
	// as a value, on the watchdog goroutine.
	OnMisuse func(Misuse)
	// Filter decides which frames are library frames. Default
	// callstack.NewFilter().
	Filter *callstack.Filter
	// ReportsPerMinute and ReportBurst rate-limit leak reports: a burst
	// of ReportBurst, then ReportsPerMinute per minute. Defaults
	// DefaultReportsPerMin and DefaultReportBurst.
	ReportsPerMinute int
	ReportBurst      int
	// QueryLimit is the number of bytes of SQL text kept per resource.
	// Default DefaultQueryLimit.
	QueryLimit int
	// RedactSQL replaces the literals (strings, numbers) in the SQL text
	// of reports, misuse reports, pool alerts and the live page with "?"
	// (see internal/redact). It is applied when a report is made, never
	// on the hot path.
	RedactSQL bool
	// SQLDialect is the dialect RedactSQL reads the SQL text in: "mysql"
	// (MySQL and MariaDB: backslash escapes, "..." strings), "postgres"
	// ("..." identifiers kept, E'...' and $tag$ strings) or "sqlite". Any
	// other value, "" included, reads it so that no literal of either
	// MySQL or PostgreSQL is kept, redacting where they differ. The driver
	// sets it from the wrapped driver.
	SQLDialect string
	// HoldBuckets are the upper bounds (inclusive, increasing, at most
	// MaxBuckets) of the histogram of hold times that CloseHeld
	// records; none keeps no histogram.
	HoldBuckets []time.Duration
	// DurationSlots is the number of statement-duration histograms that
	// NoteTimed records into (the driver keeps one per operation), with
	// the upper bounds DurationBuckets (inclusive, increasing, at most
	// MaxBuckets). Zero keeps none.
	DurationSlots   int
	DurationBuckets []time.Duration
	// Now is the clock; default [Now]. Tests inject their own.
	Now func() time.Time
	// ContextAttrs, when set, takes attributes (a request id, a trace id)
	// from the context a resource is opened under; the driver calls it
	// through [Tracker.ContextAttrs] once per tx at BeginTx, once per
	// conn checkout at its first statement and once per result set
	// outside a tx, never per statement of a tx or checkout, and for the
	// statement that shows a misuse. They are kept, bounded, on the
	// resource and shown in its reports (Report.Attrs), its release line,
	// misuse and pool reports, the live page and the test gate.
	ContextAttrs func(context.Context) []slog.Attr
}

// dialectOf maps Config.SQLDialect to redact's dialects.
func dialectOf(name string) redact.Dialect {
	switch name {
	case "mysql":
		return redact.MySQL
	case "postgres":
		return redact.PostgreSQL
	case "sqlite":
		return redact.SQLite
	}
	return redact.Generic
}

// setDBStats makes the live page show f, the pool's database/sql
// statistics, until the tracker stops (see internal/poolstats).
func (t *Tracker) setDBStats(f func() sql.DBStats) {
	t.stopMu.RLock()
	defer t.stopMu.RUnlock()
	if !t.stopped {
		poolstats.Set(t, f)
	}
}

// Tracker tracks the open resources of one pool and runs its watchdog.
type Tracker struct {
	cfg      Config
	shards   [numShards]shard
	releases chan *release
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// stopped is set by Stop before the watchdog's last drain: a release
	// queued before it is logged by the watchdog, one after it by
	// announce itself.
	stopMu   sync.RWMutex
	stopped  bool
	injected bool           // cfg.Now was given: read it instead of internal/clock
	dialect  redact.Dialect // cfg.SQLDialect

	// Scan's state, guarded by scanMu
	scanMu     sync.Mutex
	tokens     float64
	lastRefill time.Time
	suppressed int64

	reported, released, suppressedTotal, dropped, panics, poolAlerts atomic.Int64
	reportedByKind                                                   [numKinds]atomic.Int64
	misuseByKind                                                     [len(MisuseKinds)]atomic.Int64
	deaths                                                           [len(deathStates)]atomic.Int64

	// misuse reports, queued by the driver for the watchdog
	misuses    chan *misuseItem
	seen       map[string]bool // misuse sites already logged (watchdog only)
	deathIdles []time.Duration // watchdog only
	hinted     bool            // watchdog only

	returnsState returnsState // whether conn returns can be seen (returns.go)
}

const numShards = 32

// NumShards is the number of shards: resources opened on goroutines whose
// ids are equal modulo NumShards share one.
const NumShards = numShards

// queueLen is how many release lines and misuse reports may wait for the
// watchdog; more are dropped and counted (Stats.Dropped).
const queueLen = 1024

// shard is one lock-protected list of open resources; resources are
// spread over shards by the id of the goroutine that opened them, so that
// no lock is shared by all goroutines.
type shard struct {
	mu      sync.Mutex
	head    *Resource // newest
	tail    *Resource // oldest
	n       int
	returns uint64  // conn checkouts ended in this shard
	seq     uint64  // resources opened in this shard (Resource.seq)
	hold    durHist // hold times recorded by CloseHeld in this shard

	dur       []durHist       // statement durations by slot, recorded by NoteTimed
	durBounds []time.Duration // Config.DurationBuckets

	// Keep the written fields of neighbouring shards, used by different
	// goroutines, off each other's cache lines.
	_ [64]byte
}

// add counts d in the bucket of bounds it falls in.
func (h *durHist) add(bounds []time.Duration, d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += int64(d)
}

// Durations returns the statement durations recorded by
// [Resource.NoteTimed] in slot: the bucket bounds (Config.DurationBuckets),
// the count in each bucket (not cumulative; one more than the bounds, the
// last above them all) and the sum in seconds (a float, as Prometheus
// keeps it: it never wraps). It takes each shard's lock in turn. A
// slot out of range returns no counts.
func (t *Tracker) Durations(slot int) (bounds []time.Duration, counts []uint64, sum float64) {
	if slot < 0 || slot >= t.cfg.DurationSlots {
		return nil, nil, 0
	}
	counts, sum = t.merge(len(t.cfg.DurationBuckets), func(s *shard) *durHist { return &s.dur[slot] })
	return t.cfg.DurationBuckets, counts, sum
}

// durHist counts durations by bucket (the last count is above every
// bound), under the shard's lock.
type durHist struct {
	counts [MaxBuckets + 1]uint64
	sum    int64       // nanoseconds added since the last merge
	folded nanosum.Sum // the sums merge moved out of sum, so that it never wraps
}

// MaxBuckets is the most bucket bounds [Config.HoldBuckets] and
// [Config.DurationBuckets] may have.
const MaxBuckets = 16

// HoldHistogram returns the hold times recorded by [Tracker.CloseHeld]:
// the bucket bounds (Config.HoldBuckets), the count in each bucket (not
// cumulative; one more than the bounds, the last above them all) and the
// sum in seconds, as [Tracker.Durations]. It takes each shard's lock in
// turn.
func (t *Tracker) HoldHistogram() (bounds []time.Duration, counts []uint64, sum float64) {
	counts, sum = t.merge(len(t.cfg.HoldBuckets), func(s *shard) *durHist { return &s.hold })
	return t.cfg.HoldBuckets, counts, sum
}

// merge adds up, over the shards, the histogram (with n bounds) that
// pick chooses in each, with its sum in seconds. It moves each shard's
// integer sum into a total that does not wrap (internal/nanosum): the
// hot path adds nanoseconds as integers, which would wrap after 292
// years of accumulated time (a hundred days for a thousand conns always
// held), and a scrape empties them long before.
func (t *Tracker) merge(n int, pick func(*shard) *durHist) ([]uint64, float64) {
	counts := make([]uint64, n+1)
	var sum nanosum.Sum
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		h := pick(s)
		for j := range counts {
			counts[j] += h.counts[j]
		}
		h.folded.Add(h.sum)
		h.sum = 0
		sum.AddSum(h.folded)
		s.mu.Unlock()
	}
	return counts, sum.Seconds()
}

// Resource is one open tracked resource. The driver keeps the pointer
// returned by [Tracker.Open] and hands it back to [Tracker.Close].
type Resource struct {
	kind       Kind
	shard      *shard
	prev, next *Resource
	start      int64 // an internal/clock reading
	stack      callstack.Stack

	owned  bool      // opened by OpenIn: never recycled
	holder *Resource // the conn checkout this rows or tx holds (Opening.Holder)

	// A conn checkout's cover (see coverLocked), guarded by shard.mu
	// whichever shard the tx or rows holding it are in.
	covers    int32 // the open tx and rows that hold r
	inTx      bool  // one of them is a tx
	coverFrom int64 // since when covers > 0 (an internal/clock reading)
	coveredNS int64 // the time r was covered in the covers that have ended, in nanoseconds

	// guarded by shard.mu
	seq        uint64 // the shard's count when r was opened: see id
	closed     bool
	reported   bool
	suppressed bool

	goid int64 // the goroutine that opened it
	// flags holds flagWrote (a tx that ran a statement that writes or
	// locks), set without the shard lock before a statement is noted.
	flags atomic.Uint32

	// guarded by shard.mu
	statements int64
	lastQuery  string
	truncated  bool
	cut        string // the last cut text copied for r, kept across reuse: lastQuery when truncated
	limit      int32

	// attrs are from Config.ContextAttrs, bounded (see MaxContextAttrs):
	// set before insert (Opening.Attrs) or, for a conn checkout, once
	// while open under shard.mu (SetAttrs); read under shard.mu, or
	// without it by the resource's owner; cleared when r is opened again.
	attrs []slog.Attr
}

// NewTracker returns a Tracker for one pool and starts its watchdog. Call
// [Tracker.Stop] to stop the watchdog when the pool closes.
func NewTracker(cfg Config) (*Tracker, error) {
	defaults := [numKinds]time.Duration{0, DefaultTxThreshold, DefaultConnThreshold, DefaultRowsThreshold, DefaultStmtThreshold}
	for _, k := range Kinds {
		if cfg.Thresholds[k] < 0 {
			return nil, fmt.Errorf("%w: negative %s threshold %v", ErrInvalidConfig, k, cfg.Thresholds[k])
		}
		if cfg.Thresholds[k] == 0 && !cfg.ThresholdsSet[k] {
			cfg.Thresholds[k] = defaults[k]
		}
	}
	switch {
	case cfg.Interval < 0:
		return nil, fmt.Errorf("%w: negative interval %v", ErrInvalidConfig, cfg.Interval)
	case cfg.ReportsPerMinute < 0 || cfg.ReportBurst < 0:
		return nil, fmt.Errorf("%w: negative report limit", ErrInvalidConfig)
	case cfg.QueryLimit < 0:
		return nil, fmt.Errorf("%w: negative query limit %d", ErrInvalidConfig, cfg.QueryLimit)
	}
	for _, b := range [][]time.Duration{cfg.HoldBuckets, cfg.DurationBuckets} {
		if len(b) > MaxBuckets {
			return nil, fmt.Errorf("%w: %d buckets (at most %d)", ErrInvalidConfig, len(b), MaxBuckets)
		}
		for i := 1; i < len(b); i++ {
			if b[i] <= b[i-1] {
				return nil, fmt.Errorf("%w: bucket bounds not increasing", ErrInvalidConfig)
			}
		}
	}
	if cfg.DurationSlots < 0 || cfg.DurationSlots > 64 {
		return nil, fmt.Errorf("%w: %d duration slots (0 to 64)", ErrInvalidConfig, cfg.DurationSlots)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
		for _, k := range Kinds {
			if th := cfg.Thresholds[k]; th > 0 && th/2 < cfg.Interval {
				cfg.Interval = max(th/2, minInterval)
			}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Filter == nil {
		cfg.Filter = callstack.NewFilter()
	}
	if cfg.ReportsPerMinute == 0 {
		cfg.ReportsPerMinute = DefaultReportsPerMin
	}
	if cfg.ReportBurst == 0 {
		cfg.ReportBurst = DefaultReportBurst
	}
	if cfg.QueryLimit == 0 {
		cfg.QueryLimit = DefaultQueryLimit
	}
	injected := cfg.Now != nil
	if !injected {
		cfg.Now = Now
	}
	t := &Tracker{
		cfg: cfg,
		// Queues of pointers: the items are built only when something
		// is to be logged (rare), and a queue of values would keep about
		// 1 MB per pool that the garbage collector scans on every cycle.
		releases: make(chan *release, queueLen),
		misuses:  make(chan *misuseItem, queueLen),
		seen:     map[string]bool{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		tokens:   float64(cfg.ReportBurst),
		injected: injected,
		dialect:  dialectOf(cfg.SQLDialect),
	}
	t.cfg.HoldBuckets = append([]time.Duration(nil), cfg.HoldBuckets...)
	t.cfg.DurationBuckets = append([]time.Duration(nil), cfg.DurationBuckets...)
	if cfg.DurationSlots > 0 {
		for i := range t.shards {
			t.shards[i].dur = make([]durHist, cfg.DurationSlots)
			t.shards[i].durBounds = t.cfg.DurationBuckets
		}
	}
	t.lastRefill = cfg.Now()
	registry.add(t)
	go t.watch()
	return t, nil
}

// DBName returns the pool's name.
func (t *Tracker) DBName() string { return t.cfg.DBName }

// SQLDialect returns Config.SQLDialect: "mysql", "postgres", "sqlite",
// or "" when the wrapped driver's dialect is not known.
func (t *Tracker) SQLDialect() string { return t.cfg.SQLDialect }

// Threshold returns the threshold of kind k (zero when reporting is off).
func (t *Tracker) Threshold(k Kind) time.Duration {
	if int(k) >= numKinds {
		return 0
	}
	return t.cfg.Thresholds[k]
}

// Open starts tracking a resource of kind k opened by the calling
// goroutine. skip counts the frames to leave out of the captured stack,
// 0 meaning the caller of Open. It does not allocate beyond the Resource
// itself and takes only one shard's lock.
func (t *Tracker) Open(k Kind, skip int) *Resource {
	r := t.newResource(k, t.now(), goid.Get())
	r.stack.Capture(skip + 1)
	t.insert(r)
	return r
}

// OpenIn is Open into storage the caller owns, such as a field of the
// conn wrapper that tracks the conn's checkouts one after another: it
// saves taking a Resource from the pool and putting it back. r must be
// the zero Resource or one closed since; the caller must not open it
// again before Close. Close does not recycle it.
func (t *Tracker) OpenIn(r *Resource, k Kind, skip int) *Resource {
	t.reset(r, k, t.now(), goid.Get())
	r.owned = true
	r.stack.Capture(skip + 1)
	t.insert(r)
	return r
}

// Now is the tracker's default clock: time.Now's value, but read from
// the monotonic clock alone (internal/clock), whose wall part follows the
// monotonic clock from process start, which is what durations need.
func Now() time.Time { return clock.Time(clock.Now()) }

// now reads the tracker's clock as an internal/clock reading: the hot
// path's form of cfg.Now.
func (t *Tracker) now() int64 {
	if t.injected {
		return clock.Of(t.cfg.Now())
	}
	return clock.Now()
}

// resources recycles Resources: one is opened for every checkout, so
// allocating each would cost more than everything else sqlwatch does on
// a statement. A Resource goes back at Close; its owner (the driver's
// wrapper) drops its pointer then, and everything else reads resources
// only under their shard's lock, while they are open.
var resources = sync.Pool{New: func() any { return new(Resource) }}

func (t *Tracker) newResource(k Kind, start int64, g int64) *Resource {
	r := resources.Get().(*Resource)
	t.reset(r, k, start, g)
	return r
}

// reset prepares a new or closed Resource for opening.
func (t *Tracker) reset(r *Resource, k Kind, start int64, g int64) {
	r.kind, r.start, r.limit, r.goid = k, start, int32(t.cfg.QueryLimit), g
	r.closed, r.reported, r.suppressed = false, false, false
	r.statements, r.lastQuery, r.truncated = 0, "", false
	r.attrs = nil
	r.covers, r.inTx, r.coverFrom, r.coveredNS = 0, false, 0, 0
	if r.flags.Load() != 0 { // an atomic store costs more than a load
		r.flags.Store(0)
	}
}

// Opening describes a resource opened by a statement, for
// [Tracker.OpenLike].
type Opening struct {
	// Into, when not nil, is storage the caller owns, as for
	// [Tracker.OpenIn].
	Into *Resource
	// Like, when not nil, is the checkout opened by the same call (a
	// query that checks a conn out opens the conn and the rows at once):
	// the resource copies its stack and start instead of capturing again.
	Like *Resource
	// Holder, when not nil, is the conn checkout the resource (rows or a
	// tx) holds: while the resource is open the checkout is covered (not
	// reported on its own, and the time does not count toward its
	// threshold) and, for a tx, in a transaction (pool alerts show it).
	// Holder must be open; the cover ends when the resource is closed.
	Holder *Resource
	// At, when not 0 and Like is nil, is the resource's start, an
	// internal/clock reading (clock.Now); 0 means now. It is ignored when
	// Config.Now is set: the injected clock is read.
	At int64
	// Query, when not empty, is recorded as the resource's first
	// statement, as [Resource.Note] would.
	Query string
	// NoteHolder, when true and Holder is not nil, also records Query on
	// Holder as Holder.NoteTimed(Query, Slot, D) would, by the time
	// OpenLike returns.
	NoteHolder bool
	Slot       int
	D          time.Duration
	// Attrs, when not nil, are the resource's context attributes, from
	// [Tracker.ContextAttrs].
	Attrs []slog.Attr
}

// note is a statement to record on a resource under its shard's lock.
type note struct {
	query     string
	truncated bool
	slot      int
	d         time.Duration
}

// OpenLike starts tracking a resource of kind k opened by a statement, as
// o describes. Without o.Like the stack is captured, skip as in
// [Tracker.Open].
func (t *Tracker) OpenLike(k Kind, o Opening, skip int) *Resource {
	r := o.Into
	if r == nil {
		r = resources.Get().(*Resource)
	} else {
		r.owned = true
	}
	if like := o.Like; like != nil {
		t.reset(r, k, like.start, like.goid)
		r.stack = like.stack
	} else {
		at := o.At
		if at == 0 || t.injected {
			at = t.now()
		}
		t.reset(r, k, at, goid.Get())
		r.stack.Capture(skip + 1)
	}
	if o.Query != "" {
		// No lock: nothing else sees r before insert.
		r.keep(r.clip(o.Query))
		r.statements = 1
		if k == KindTx && sqltext.Writes(o.Query) {
			r.flags.Or(flagWrote)
		}
	}
	r.holder = o.Holder
	r.attrs = o.Attrs
	if o.NoteHolder && o.Holder != nil {
		n := o.Holder.prepare(o.Query, o.Slot, o.D)
		t.insertNoting(r, &n)
	} else {
		t.insertNoting(r, nil)
	}
	return r
}

func (t *Tracker) insert(r *Resource) { t.insertNoting(r, nil) }

// insertNoting inserts r and, when n is not nil, records n on r's holder.
func (t *Tracker) insertNoting(r *Resource, n *note) {
	s := &t.shards[uint64(r.goid)%numShards]
	r.shard = s
	s.mu.Lock()
	s.seq++
	r.seq = s.seq
	r.next = s.head
	if s.head != nil {
		s.head.prev = r
	} else {
		s.tail = r
	}
	s.head = r
	s.n++
	h := r.holder
	if h != nil && h.shard == s {
		h.coverLocked(r)
		if n != nil {
			h.noteLocked(n)
		}
	}
	s.mu.Unlock()
	if h != nil && h.shard != s {
		hs := h.shard
		hs.mu.Lock()
		h.coverLocked(r)
		if n != nil {
			h.noteLocked(n)
		}
		hs.mu.Unlock()
	}
}

// Close ends the tracking of r. Closing nil does nothing. After Close the
// caller must drop r: it is recycled. When r was reported as a leak, a
// release line is queued for the watchdog to log, so a slow logger never
// blocks the caller; after [Tracker.Stop] (DB.Close), when there is no
// watchdog, Close logs it before it returns, on a goroutine of its own,
// and waits for the logger and OnReport 2 seconds at most (what is still
// running then is counted in Stats.Dropped).
func (t *Tracker) Close(r *Resource) { t.close(r, -1) }

// CloseHeld is Close for a resource that was held for held, which it
// records in the tracker's histogram of hold times (see
// [Config.HoldBuckets] and [Tracker.HoldHistogram]). It takes the same
// one lock as Close.
func (t *Tracker) CloseHeld(r *Resource, held time.Duration) { t.close(r, max(held, 0)) }

// close is Close, recording held in the hold histogram unless it is
// negative.
func (t *Tracker) close(r *Resource, held time.Duration) {
	if r == nil {
		return
	}
	s := r.shard
	s.mu.Lock()
	if r.closed {
		s.mu.Unlock()
		return
	}
	r.closed = true
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		s.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		s.tail = r.prev
	}
	r.prev, r.next = nil, nil
	s.n--
	announce := r.reported && !r.suppressed
	if r.kind == KindConn {
		s.returns++
	}
	h := r.holder
	r.holder, r.lastQuery = nil, "" // neither pins memory while r is closed
	if h != nil && h.shard == s {
		t.uncoverLocked(h, r.kind)
	}
	if held >= 0 && len(t.cfg.HoldBuckets) > 0 {
		s.hold.add(t.cfg.HoldBuckets, held)
	}
	s.mu.Unlock()
	if h != nil && h.shard != s {
		hs := h.shard
		hs.mu.Lock()
		t.uncoverLocked(h, r.kind)
		hs.mu.Unlock()
	}
	if announce {
		t.announce(&release{kind: r.kind, held: clock.Between(r.start, t.now()), stack: r.stack, attrs: r.attrs})
	}
	if !r.owned {
		resources.Put(r)
	}
}

// Note records that a statement ran on the resource: it counts it and
// keeps the SQL text, truncated. Argument values are never passed here.
// It takes the lock of the resource's shard, which is the goroutine's own
// in the usual case.
func (r *Resource) Note(query string) { r.NoteTimed(query, -1, 0) }

// NoteTimed is Note for a statement that took d, which it records in the
// tracker's duration histogram number slot (see [Config.DurationSlots]);
// a slot out of range records nothing. It takes the same one lock as
// Note.
func (r *Resource) NoteTimed(query string, slot int, d time.Duration) {
	if r == nil {
		return
	}
	n := r.prepare(query, slot, d)
	s := r.shard
	s.mu.Lock()
	r.noteLocked(&n)
	s.mu.Unlock()
}

// prepare does the part of NoteTimed that needs no lock.
func (r *Resource) prepare(query string, slot int, d time.Duration) note {
	// Whether it writes is read from the whole text, before truncation.
	if r.kind == KindTx && r.flags.Load()&flagWrote == 0 && sqltext.Writes(query) {
		r.flags.Or(flagWrote)
	}
	query, truncated := r.clip(query)
	return note{query: query, truncated: truncated, slot: slot, d: d}
}

// noteLocked records n on r, under r's shard's lock.
func (r *Resource) noteLocked(n *note) {
	s := r.shard
	r.statements++
	r.keep(n.query, n.truncated)
	if uint(n.slot) < uint(len(s.dur)) {
		s.dur[n.slot].add(s.durBounds, n.d)
	}
}

// clip truncates query to the resource's limit; the cut text still
// shares the statement's memory (keep copies it).
func (r *Resource) clip(query string) (string, bool) {
	if len(query) > int(r.limit) {
		return sqltext.Truncate(query, int(r.limit)), true
	}
	return query, false
}

// keep makes query r's last statement, under r's shard lock (or before r
// is visible). A cut text is kept as a copy, so that a resource never
// keeps a long statement's memory alive; the copy is reused while the
// same long statement repeats, so that only a new long text allocates. A
// text within the limit is kept as it is, without allocating: it keeps
// alive only the memory it belongs to, for as long as it is the last
// statement of an open resource.
func (r *Resource) keep(query string, truncated bool) {
	if truncated {
		if r.cut != query {
			r.cut = strings.Clone(query)
		}
		query = r.cut
	}
	r.lastQuery, r.truncated = query, truncated
}

// coverLocked marks r (a conn checkout) as held by by, a tx or rows
// just opened, which is reported on its own: while covered, r is not
// reported, and the time it is covered does not count toward its
// threshold (see uncoverLocked), so one leaked tx makes one report, not
// two. A tx also marks r in a transaction; pool alerts show it. Each
// cover needs one uncoverLocked. The caller holds r's shard lock.
func (r *Resource) coverLocked(by *Resource) {
	if r.covers == 0 {
		r.coverFrom = max(by.start, r.start) // by copies r's start when opened by the same call
	}
	r.covers++
	if by.kind == KindTx {
		r.inTx = true
	}
}

// uncoverLocked undoes one coverLocked of r by a resource of kind k. The
// last one reads the clock to add the time r was covered to
// r.coveredNS. The caller holds r's shard lock.
func (t *Tracker) uncoverLocked(r *Resource, k Kind) {
	if k == KindTx {
		r.inTx = false
	}
	if r.covers--; r.covers == 0 {
		r.coveredNS += max(t.now()-r.coverFrom, 0)
	}
}

// uncoveredAge is how long r has been open at now (an internal/clock
// reading) and not covered, for the watchdog: a conn checkout's time
// held by a tx or rows, which report for themselves, does not count
// toward its threshold. The caller holds r's shard lock.
func (r *Resource) uncoveredAge(now int64) time.Duration {
	return time.Duration(now - r.start - r.coveredNS)
}

// The bits of Resource.flags.
const flagWrote = 1 << 0

// ID names one opening of a resource: a Resource is recycled (and a
// conn's is reopened at every checkout), so its address alone does not
// tell two openings apart.
type ID struct {
	r   *Resource
	seq uint64
}

// id returns r's ID; the caller holds r's shard lock.
func (r *Resource) id() ID { return ID{r, r.seq} }

// covered reports whether r is held by a resource that reports for
// itself (see coverLocked). The caller holds r's shard lock.
func (r *Resource) covered() bool { return r.covers > 0 }

// CoverState returns, under r's shard lock, how many open tx and rows
// cover r (a conn checkout) and whether one is a tx: for the driver's test
// that its own record of them agrees (docs/design.md, "recorded twice").
func (r *Resource) CoverState() (covers int, inTx bool) {
	s := r.shard
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(r.covers), r.inTx
}

// Goroutine returns the id of the goroutine that opened r.
func (r *Resource) Goroutine() int64 { return r.goid }

// Kind returns the resource's kind.
func (r *Resource) Kind() Kind { return r.kind }

// Start returns when the resource was opened.
func (r *Resource) Start() time.Time { return clock.Time(r.start) }

// Elapsed returns the time since the resource was opened, read from the
// default clock (never an injected one): the driver's measure of a
// transaction's or checkout's duration for metrics.
func (r *Resource) Elapsed() time.Duration { return clock.Since(r.start) }

func (r *Resource) statementInfo() (int64, string) {
	r.shard.mu.Lock()
	defer r.shard.mu.Unlock()
	return r.statementInfoLocked()
}

// statementInfoLocked is statementInfo for a caller that holds r's shard
// lock.
func (r *Resource) statementInfoLocked() (int64, string) {
	q := r.lastQuery
	if r.truncated {
		q += "…"
	}
	return r.statements, q
}

// OpenCount counts the resources of kind k that are open now (see
// unseen for conn checkouts). Like
// Oldest, it is meant for pages and tests.
func (t *Tracker) OpenCount(k Kind) int {
	n := 0
	hidden := t.returnsHidden()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for r := s.head; r != nil; r = r.next {
			if r.kind == k && !unseen(hidden, r) {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Oldest returns the number of open resources of kind k and the age of
// the oldest (0 when none is open). It takes each shard's lock in turn,
// briefly; it is meant for scrapes, not for every statement.
func (t *Tracker) Oldest(k Kind) (n int, age time.Duration) {
	var oldest int64
	hidden := t.returnsHidden()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for r := s.head; r != nil; r = r.next {
			if r.kind == k && !unseen(hidden, r) {
				if n == 0 || r.start < oldest {
					oldest = r.start
				}
				n++
			}
		}
		s.mu.Unlock()
	}
	if n > 0 {
		age = clock.Between(oldest, t.now())
	}
	return n, age
}

// returns counts the conn checkouts that have ended; the pool monitor
// compares it between polls.
func (t *Tracker) returns() uint64 {
	var n uint64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.returns
		s.mu.Unlock()
	}
	return n
}

// Snapshot describes every open resource (but a conn checkout not known
// to be one, see unseen), oldest first, as Reports whose
// Age is the age now (Threshold is the kind's threshold; Released is
// false). It symbolizes stacks, so it is slow; use it for pages and
// tests, never per statement.
func (t *Tracker) Snapshot() []Report {
	hidden := t.returnsHidden()
	snaps := t.collect(func(r *Resource) bool { return !unseen(hidden, r) })
	now := t.cfg.Now()
	out := make([]Report, 0, len(snaps))
	for i := range snaps {
		rep := t.describe(&snaps[i], now)
		out = append(out, rep)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Age > out[j].Age })
	return out
}

// Stats returns the Tracker's counters.
func (t *Tracker) Stats() Stats {
	st := Stats{
		DBName:     t.cfg.DBName,
		Reported:   t.reported.Load(),
		Released:   t.released.Load(),
		Suppressed: t.suppressedTotal.Load(),
		Dropped:    t.dropped.Load(),
		Panics:     t.panics.Load(),
		PoolAlerts: t.poolAlerts.Load(),
	}
	for k := range st.ReportedByKind {
		st.ReportedByKind[k] = t.reportedByKind[k].Load()
	}
	st.Misuse = map[string]int64{}
	for i, k := range MisuseKinds {
		st.Misuse[k] = t.misuseByKind[i].Load()
	}
	st.ConnDeaths = map[string]int64{}
	for i, k := range deathStates {
		st.ConnDeaths[k] = t.deaths[i].Load()
	}
	return st
}

// Stop stops the watchdog after it has logged the queued release lines,
// and removes the Tracker from [Trackers]. Resources still open are no
// longer scanned, but one already reported as a leak still has its
// release line logged when it is closed after Stop (see [Tracker.Close]).
// Stop is idempotent; the driver calls it from DB.Close.
func (t *Tracker) Stop() error {
	t.stopOnce.Do(func() {
		t.stopMu.Lock()
		t.stopped = true
		t.stopMu.Unlock()
		close(t.stop)
		<-t.done
		registry.remove(t)
		poolstats.Delete(t)
	})
	return nil
}

// snapshot is a copy, taken under the shard lock, of what a report needs.
type snapshot struct {
	kind       Kind
	start      time.Time
	stack      callstack.Stack
	statements int64
	lastQuery  string
	suppressed int64
	goid       int64
	inTx       bool
	wrote      bool
	attrs      []slog.Attr
}

// collect copies the resources for which pick returns true; pick runs
// under the shard lock.
func (t *Tracker) collect(pick func(*Resource) bool) []snapshot {
	var out []snapshot
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for r := s.head; r != nil; r = r.next {
			if !pick(r) {
				continue
			}
			out = append(out, r.snapshot())
		}
		s.mu.Unlock()
	}
	return out
}

// snapshot copies r; the caller holds r's shard lock.
func (r *Resource) snapshot() snapshot {
	n, q := r.statementInfoLocked()
	return snapshot{kind: r.kind, start: clock.Time(r.start), stack: r.stack, statements: n, lastQuery: q,
		goid: r.goid, inTx: r.inTx, wrote: r.flags.Load()&flagWrote != 0, attrs: r.attrs}
}

// describe symbolizes a snapshot into a Report.
func (t *Tracker) describe(s *snapshot, now time.Time) Report {
	rep := t.describeResolved(s, now, "", "", nil)
	rep.Suppressed = s.suppressed
	t.resolve(&rep, &s.stack)
	return rep
}

func (t *Tracker) resolve(rep *Report, st *callstack.Stack) {
	origin, app, ok := t.cfg.Filter.Resolve(st)
	rep.Stack = app
	if ok {
		rep.Origin = origin.Location()
		rep.Func = origin.Function
	} else {
		rep.Origin = "unknown"
	}
}

// registry lists the live Trackers of the process.
var registry = &trackerSet{m: map[*Tracker]struct{}{}}

type trackerSet struct {
	mu sync.Mutex
	m  map[*Tracker]struct{}
}

func (s *trackerSet) add(t *Tracker)    { s.mu.Lock(); s.m[t] = struct{}{}; s.mu.Unlock() }
func (s *trackerSet) remove(t *Tracker) { s.mu.Lock(); delete(s.m, t); s.mu.Unlock() }

// Trackers returns the Trackers that are open now (one per pool opened
// through sqlwatch and not yet closed), in no particular order.
func Trackers() []*Tracker {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	out := make([]*Tracker, 0, len(registry.m))
	for t := range registry.m {
		out = append(out, t)
	}
	return out
}

// OpenIDs adds the ids of the resources open now to into: the test
// gate's record of what was open before a test.
func (t *Tracker) OpenIDs(into map[ID]struct{}) {
	t.collect(func(r *Resource) bool {
		into[r.id()] = struct{}{}
		return false
	})
}

// Uncovered describes the open resources whose id is not in before,
// leaving out the conn checkouts held by a tx or rows (which are
// described instead), and every conn checkout while the pool's returns
// are hidden (see returnsState), in no particular order. It symbolizes stacks: it
// is for the test gate, not for every statement.
func (t *Tracker) Uncovered(before map[ID]struct{}) []Report {
	hidden := t.returnsHidden()
	snaps := t.collect(func(r *Resource) bool {
		if _, old := before[r.id()]; old {
			return false
		}
		return !r.covered() && !unseen(hidden, r)
	})
	if len(snaps) == 0 {
		return nil
	}
	now := t.cfg.Now()
	out := make([]Report, 0, len(snaps))
	for i := range snaps {
		out = append(out, t.describe(&snaps[i], now))
	}
	return out
}
