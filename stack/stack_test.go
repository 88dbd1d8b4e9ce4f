package stack_test

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/stack"
)

// captureHere captures into s with the given skip and returns the line of
// its Capture call.
//
//go:noinline
func captureHere(s *callstack.Stack, skip int) int {
	s.Capture(skip)
	_, _, line, _ := runtime.Caller(0)
	return line - 1
}

// recurse calls itself n times, then captures into s.
//
//go:noinline
func recurse(n int, s *callstack.Stack) {
	if n == 0 {
		s.Capture(0)
		return
	}
	recurse(n-1, s)
}

// inlinedCapture is small enough to be inlined into outerCapture.
func inlinedCapture(s *callstack.Stack) { s.Capture(0) }

//go:noinline
func outerCapture(s *callstack.Stack) { inlinedCapture(s) }

const testPkg = "github.com/sqlwatch/sqlwatch/stack_test."

// here returns the function name and line of its caller.
func here() (string, int) {
	pc, _, line, _ := runtime.Caller(1)
	return runtime.FuncForPC(pc).Name(), line
}

func TestCaptureSkip(t *testing.T) {
	var s callstack.Stack

	// skip 0: the first frame is the function that called Capture.
	line := captureHere(&s, 0)
	frames := callstack.Frames(&s)
	if len(frames) == 0 {
		t.Fatalf("Capture(0): got no frames")
	}
	if got, want := frames[0].Function, testPkg+"captureHere"; got != want {
		t.Errorf("Capture(0): first frame is %s; want %s", got, want)
	}
	if got := frames[0].Line; got != line {
		t.Errorf("Capture(0): first frame at line %d; want %d", got, line)
	}
	if got, want := frames[0].Location(), "stack/stack_test.go:"; !strings.HasPrefix(got, want) {
		t.Errorf("Capture(0): Location() = %q; want prefix %q", got, want)
	}

	// skip 1: the first frame is the caller of that function.
	captureHere(&s, 1)
	fn, line := here()
	line--
	frames = callstack.Frames(&s)
	if len(frames) == 0 {
		t.Fatalf("Capture(1): got no frames")
	}
	if got := frames[0]; got.Function != fn || got.Line != line {
		t.Errorf("Capture(1): first frame is %v; want %s at line %d", got, fn, line)
	}

	// skip 2: one further out, the testing package.
	captureHere(&s, 2)
	frames = callstack.Frames(&s)
	if len(frames) == 0 || frames[0].Function != "testing.tRunner" {
		t.Errorf("Capture(2): got frames %v; want testing.tRunner first", frames)
	}

	// A negative skip is treated as 0.
	captureHere(&s, -5)
	frames = callstack.Frames(&s)
	if len(frames) == 0 || frames[0].Function != testPkg+"captureHere" {
		t.Errorf("Capture(-5): got frames %v; want captureHere first", frames)
	}
}

func TestCaptureInlined(t *testing.T) {
	var s callstack.Stack
	outerCapture(&s)
	frames := callstack.Frames(&s)
	var names []string
	for _, fr := range frames {
		names = append(names, fr.Function)
	}
	want := []string{testPkg + "inlinedCapture", testPkg + "outerCapture", testPkg + "TestCaptureInlined"}
	if len(names) < len(want) || !slices.Equal(names[:len(want)], want) {
		t.Errorf("got frames %q; want them to start with %q", names, want)
	}
}

func TestCaptureNoAllocs(t *testing.T) {
	f := func(name string, run func(s *callstack.Stack)) {
		t.Helper()
		s := new(callstack.Stack)
		if got := testing.AllocsPerRun(100, func() { run(s) }); got != 0 {
			t.Errorf("%s: got %v allocations per Capture; want 0", name, got)
		}
	}
	f("shallow", func(s *callstack.Stack) { s.Capture(0) })
	f("skip", func(s *callstack.Stack) { s.Capture(3) })
	f("deep", func(s *callstack.Stack) { recurse(2*callstack.Depth, s) })
}

func TestCaptureDepth(t *testing.T) {
	f := func(n, wantLen int) {
		t.Helper()
		var s callstack.Stack
		recurse(n, &s)
		if got := s.Len(); got != wantLen {
			t.Errorf("recurse(%d): Len() = %d; want %d", n, got, wantLen)
		}
		if got := len(s.PCs()); got != s.Len() {
			t.Errorf("recurse(%d): len(PCs()) = %d; want Len() = %d", n, got, s.Len())
		}
		// The innermost frames are kept.
		frames := callstack.Frames(&s)
		for i := 0; i <= min(n, callstack.Depth-1); i++ {
			if got, want := frames[i].Function, testPkg+"recurse"; got != want {
				t.Errorf("recurse(%d): frame %d is %s; want %s", n, i, got, want)
			}
		}
	}
	f(100, callstack.Depth)
	f(callstack.Depth, callstack.Depth)

	// A shallow stack: recurse frames, the test, tRunner, goexit.
	var s callstack.Stack
	recurse(3, &s)
	if got, want := len(callstack.Frames(&s)), 4+3; got != want {
		t.Errorf("recurse(3): %d frames; want %d: %v", got, want, callstack.Frames(&s))
	}
}

func TestCaptureReplaces(t *testing.T) {
	var s callstack.Stack
	recurse(100, &s)
	s.Capture(0)
	if got := s.Len(); got >= callstack.Depth {
		t.Errorf("Len() after a shallow Capture = %d; want < %d", got, callstack.Depth)
	}
	if got, want := callstack.Frames(&s)[0].Function, testPkg+"TestCaptureReplaces"; got != want {
		t.Errorf("first frame after re-Capture is %s; want %s", got, want)
	}
}

func TestStackIsValue(t *testing.T) {
	var s callstack.Stack
	captureHere(&s, 0)
	saved := s // a copy owns its program counters
	recurse(10, &s)
	frames := callstack.Frames(&saved)
	if len(frames) == 0 || frames[0].Function != testPkg+"captureHere" {
		t.Errorf("copy after re-Capture: got frames %v; want captureHere first", frames)
	}
	if got, orig := saved.PCs(), s.PCs(); len(got) > 0 && len(orig) > 0 && &got[0] == &orig[0] {
		t.Errorf("PCs() of a copy shares the original's array")
	}
}

func TestZeroStack(t *testing.T) {
	f := func(name string, s *callstack.Stack) {
		t.Helper()
		if got := s.Len(); got != 0 {
			t.Errorf("%s: Len() = %d; want 0", name, got)
		}
		if got := s.PCs(); len(got) != 0 {
			t.Errorf("%s: PCs() = %v; want empty", name, got)
		}
		if got := callstack.Frames(s); got != nil {
			t.Errorf("%s: Frames() = %v; want nil", name, got)
		}
		origin, app, ok := callstack.NewFilter().Resolve(s)
		if ok || origin != (stack.Frame{}) || app != nil {
			t.Errorf("%s: Resolve() = %v, %v, %v; want zero Frame, nil, false", name, origin, app, ok)
		}
	}
	f("zero", new(callstack.Stack))
	f("nil", nil)
}

func TestFrameLocation(t *testing.T) {
	f := func(file string, line int, want string) {
		t.Helper()
		if got := (stack.Frame{File: file, Line: line}).Location(); got != want {
			t.Errorf("Location(%q, %d): got %q; want %q", file, line, got, want)
		}
	}
	f("/home/a/svc/handlers/orders.go", 42, "handlers/orders.go:42")
	f("handlers/orders.go", 42, "handlers/orders.go:42")
	f("orders.go", 42, "orders.go:42")
	f("/orders.go", 7, "orders.go:7")
	f("//orders.go", 7, "orders.go:7")
	f("/a//orders.go", 7, "orders.go:7")
	f("", 3, "?:3")
	f("/a/b/c.go", 0, "b/c.go:0")
	f(`C:\Users\dev\shop\handlers\orders.go`, 42, "handlers/orders.go:42")
	f("C:/Program Files/Go/src/database/sql/sql.go", 1873, "sql/sql.go:1873")
	f(`C:\orders.go`, 1, "orders.go:1")
	f("C:/orders.go", 1, "orders.go:1")
	f(`handlers\orders.go`, 5, "handlers/orders.go:5")
	f(`\\server\share\orders.go`, 5, "share/orders.go:5")
	f("/usr/local/go/src/runtime/asm_amd64.s", 1771, "runtime/asm_amd64.s:1771")
	f("github.com/sqlwatch/sqlwatch/stack/stack.go", 9, "stack/stack.go:9") // -trimpath
}

func TestFrameString(t *testing.T) {
	f := func(fr stack.Frame, want string) {
		t.Helper()
		if got := fr.String(); got != want {
			t.Errorf("%#v.String(): got %q; want %q", fr, got, want)
		}
	}
	f(stack.Frame{Function: "main.handler", File: "/src/app/main.go", Line: 12}, "main.handler (/src/app/main.go:12)")
	f(stack.Frame{File: "/src/app/main.go", Line: 12}, "? (/src/app/main.go:12)")
	f(stack.Frame{Function: "main.handler"}, "main.handler (?:0)")
	f(stack.Frame{}, "? (?:0)")
}

func TestIsLibrary(t *testing.T) {
	def := callstack.NewFilter()
	shop := callstack.NewFilter("example.com/shop/internal/db", "", "example.com/legacy/")
	f := func(filter *callstack.Filter, fn string, want bool) {
		t.Helper()
		if got := filter.IsLibrary(stack.Frame{Function: fn}); got != want {
			t.Errorf("IsLibrary(%q): got %v; want %v", fn, got, want)
		}
	}

	// The standard library parts and the runtime.
	f(def, "runtime.goexit", true)
	f(def, "runtime", true)
	f(def, "runtime/debug.Stack", true)
	f(def, "reflect.Value.call", true)
	f(def, "database/sql.(*DB).conn", true)
	f(def, "database/sql.(*DB).BeginTx.func1", true)
	f(def, "database/sql/driver.IsValue", true)
	f(def, "net/http.(*conn).serve", false)
	f(def, "testing.tRunner", false)

	// A prefix matches whole path elements only.
	f(def, "database/sqlx.Open", false)
	f(def, "database/sql_test.TestTx", false)
	f(def, "runtimefoo.X", false)
	f(def, "gorm.io/gormx.Open", false)
	f(def, "github.com/lib/pqx.Open", false)
	f(def, "github.com/jackc/pgxpool.New", false)
	f(def, "github.com/jackc/pgx/v5/stdlib.(*Conn).BeginTx", true)
	f(def, "github.com/jackc/pgx.(*Conn).Begin", true)

	// sqlwatch itself: its packages are libraries, its external tests are not.
	f(def, "github.com/sqlwatch/sqlwatch/driver.(*conn).BeginTx", true)
	f(def, "github.com/sqlwatch/sqlwatch/driver_test.TestLeak", false)
	f(def, "github.com/sqlwatch/sqlwatch/driver_test.TestLeak.func1", false)
	f(def, "github.com/sqlwatch/sqlwatch/leak.(*Tracker).Track", true)
	f(def, "github.com/sqlwatch/sqlwatch/internal/pool.get", true)
	f(def, "github.com/sqlwatch/sqlwatch/stack.(*Stack).Capture", true)
	f(def, "github.com/sqlwatch/sqlwatch/stack_test.TestIsLibrary", false)
	f(def, "github.com/sqlwatch/sqlwatch/example.main", false)

	// Closures, methods, generics.
	f(def, "gorm.io/gorm.(*DB).Begin[...]", true)
	f(def, "gorm.io/gorm.createG[...].Create", true)
	f(def, "gorm.io/gorm/callbacks.BeginTransaction", true)
	f(def, "gorm.io/driver/mysql.Migrator.CurrentDatabase", true)
	f(def, "github.com/jmoiron/sqlx.(*DB).QueryxContext.func1", true)
	f(def, "entgo.io/ent/dialect/sql.(*Driver).Tx", true)
	f(def, "github.com/uptrace/bun.(*DB).RunInTx.func1", true)
	f(def, "github.com/ngrok/sqlmw.wrappedConn.BeginTx", true)
	f(def, "example.com/shop/internal/db.InTx[...]", false)
	f(def, "example.com/shop/handlers.(*Orders).create.func2", false)

	// Package main is never a default library.
	f(def, "main.handler", false)
	f(def, "main.main.func1", false)
	f(def, "main.runtime", false)

	// Vendored libraries.
	f(def, "example.com/app/vendor/github.com/lib/pq.(*conn).Begin", true)
	f(def, "example.com/app/vendor/database/sql.(*DB).Begin", true)
	f(def, "vendor/golang.org/x/net/http2.(*Framer).ReadFrame", false)
	f(def, "example.com/app/vendor/example.com/other/vendor/gorm.io/gorm.Open", true)
	f(def, "example.com/app/vendor/example.com/mylib.Do", false)
	f(shop, "example.com/app/vendor/example.com/shop/internal/db.Open", true)

	// Extra prefixes; empty ones and a trailing slash are ignored.
	f(shop, "example.com/shop/internal/db.(*Store).WithTx", true)
	f(shop, "example.com/shop/internal/db/sqlc.(*Queries).GetOrder", true)
	f(shop, "example.com/shop/internal/dbutil.Retry", false)
	f(shop, "example.com/shop/handlers.(*Orders).create", false)
	f(shop, "example.com/legacy.Open", true)
	f(shop, "database/sql.(*DB).conn", true)
	f(shop, "main.handler", false)
	f(shop, "", false)
	f(def, "", false)

	// A nil *Filter behaves like NewFilter().
	f(nil, "database/sql.(*DB).conn", true)
	f(nil, "main.handler", false)
}

func TestNewFilterEmptyExtra(t *testing.T) {
	// An empty prefix must not turn every frame into a library frame.
	filter := callstack.NewFilter("", "/", "")
	if filter.IsLibrary(stack.Frame{Function: "main.main"}) {
		t.Errorf("NewFilter(\"\", \"/\").IsLibrary(main.main): got true; want false")
	}
}

func TestDefaultLibraries(t *testing.T) {
	want := []string{
		"runtime", "reflect", "database/sql", "github.com/ngrok/sqlmw",
		"github.com/sqlwatch/sqlwatch/driver", "github.com/sqlwatch/sqlwatch/leak",
		"github.com/sqlwatch/sqlwatch/stack", "github.com/sqlwatch/sqlwatch/metrics",
		"github.com/sqlwatch/sqlwatch/internal", "github.com/sqlwatch/sqlwatch/pgxwatch",
		"gorm.io/gorm", "gorm.io/driver", "gorm.io/plugin", "github.com/glebarez/sqlite",
		"github.com/jmoiron/sqlx", "entgo.io/ent", "github.com/uptrace/bun",
		"github.com/Masterminds/squirrel", "github.com/doug-martin/goqu",
		"github.com/georgysavva/scany", "github.com/stephenafamo/bob", "xorm.io/xorm",
		"github.com/XSAM/otelsql", "github.com/uptrace/opentelemetry-go-extra/otelsql",
		"gopkg.in/DataDog/dd-trace-go.v1/contrib/database/sql",
		"github.com/DataDog/dd-trace-go/contrib/database/sql",
		"github.com/qustavo/sqlhooks", "github.com/gchaincl/sqlhooks",
		"github.com/luna-duclos/instrumentedsql",
		"github.com/go-sql-driver/mysql", "github.com/lib/pq", "github.com/jackc/pgx",
		"github.com/jackc/puddle", "golang.org/x/sync/semaphore",
		"modernc.org/sqlite", "github.com/mattn/go-sqlite3", "github.com/glebarez/go-sqlite",
		"github.com/ncruces/go-sqlite3",
	}
	got := stack.DefaultLibraries()
	if !slices.Equal(got, want) {
		t.Errorf("DefaultLibraries(): got %q; want %q", got, want)
	}
	for i := range got {
		got[i] = "main"
	}
	if again := stack.DefaultLibraries(); !slices.Equal(again, want) {
		t.Errorf("DefaultLibraries() after modifying a result: got %q; want %q", again, want)
	}
	if callstack.NewFilter().IsLibrary(stack.Frame{Function: "main.handler"}) {
		t.Errorf("NewFilter() after modifying DefaultLibraries(): main.handler is a library frame")
	}
}

func TestSplit(t *testing.T) {
	fr := func(fn string, line int) stack.Frame {
		return stack.Frame{Function: fn, File: "/src/x.go", Line: line}
	}
	var (
		drv    = fr("github.com/sqlwatch/sqlwatch/driver.(*conn).BeginTx", 1)
		sql    = fr("database/sql.(*DB).BeginTx", 2)
		repo   = fr("example.com/shop/repo.(*Orders).Save", 3)
		gorm   = fr("gorm.io/gorm.(*DB).Transaction", 4)
		svc    = fr("example.com/shop/orders.(*Service).Place", 5)
		main   = fr("main.main", 6)
		rtMain = fr("runtime.main", 7)
		exit   = fr("runtime.goexit", 8)
		noName = fr("", 9)
	)
	f := func(frames []stack.Frame, wantOrigin stack.Frame, wantApp []stack.Frame, wantOK bool) {
		t.Helper()
		in := slices.Clone(frames)
		origin, app, ok := callstack.NewFilter().Split(frames)
		if origin != wantOrigin || !reflect.DeepEqual(app, wantApp) || ok != wantOK {
			t.Errorf("Split(%v):\ngot  %v, %v, %v\nwant %v, %v, %v", frames, origin, app, ok, wantOrigin, wantApp, wantOK)
		}
		if !slices.Equal(frames, in) {
			t.Errorf("Split modified its input: got %v; want %v", frames, in)
		}
		if len(app) > 0 && len(frames) > 0 && &app[0] == &frames[0] {
			t.Errorf("Split returned a slice of its input")
		}
	}
	f([]stack.Frame{drv, sql, repo, gorm, svc, main, rtMain, exit}, repo, []stack.Frame{repo, svc, main}, true)
	f([]stack.Frame{repo, svc}, repo, []stack.Frame{repo, svc}, true)
	f([]stack.Frame{drv, noName, sql, svc, noName, exit}, svc, []stack.Frame{svc}, true)
	f([]stack.Frame{drv, sql, exit}, stack.Frame{}, nil, false)
	f([]stack.Frame{noName}, stack.Frame{}, nil, false)
	f([]stack.Frame{}, stack.Frame{}, nil, false)
	f(nil, stack.Frame{}, nil, false)
}

func TestResolve(t *testing.T) {
	var s callstack.Stack
	line := captureHere(&s, 0)

	origin, app, ok := callstack.NewFilter().Resolve(&s)
	if !ok || origin.Function != testPkg+"captureHere" || origin.Line != line {
		t.Fatalf("Resolve: got origin %v, ok %v; want %scaptureHere at line %d", origin, ok, testPkg, line)
	}
	if len(app) < 3 || app[0] != origin || app[1].Function != testPkg+"TestResolve" || app[2].Function != "testing.tRunner" {
		t.Errorf("Resolve: got app %v; want captureHere, TestResolve, testing.tRunner", app)
	}
	for _, fr := range app {
		if strings.HasPrefix(fr.Function, "runtime.") {
			t.Errorf("Resolve: app stack holds runtime frame %v", fr)
		}
	}

	// Declaring the test package a library moves the origin outward.
	origin, _, ok = callstack.NewFilter("github.com/sqlwatch/sqlwatch/stack_test").Resolve(&s)
	if !ok || origin.Function != "testing.tRunner" {
		t.Errorf("Resolve with stack_test as library: got origin %v, ok %v; want testing.tRunner", origin, ok)
	}
}

func TestFilterConcurrent(t *testing.T) {
	filter := callstack.NewFilter("example.com/shop/internal/db")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var s callstack.Stack
			for range 50 {
				captureHere(&s, 0)
				if origin, _, ok := filter.Resolve(&s); !ok || origin.Function != testPkg+"captureHere" {
					t.Errorf("concurrent Resolve: got origin %v, ok %v; want captureHere", origin, ok)
					return
				}
			}
		})
	}
	wg.Wait()
}
