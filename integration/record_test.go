package integration

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/stack"
)

// recordEnv, set to 1, makes the tests that record stacks write them as
// golden fixtures into ../testdata/stacks (then run
// go test ./stack -run TestGolden -update in the main module).
const recordEnv = "SQLWATCH_RECORD_STACKS"

// recorder is a driver placed under sqlwatch's: it passes every call to
// the driver it wraps and, at each BeginTx and QueryContext, captures the
// stack the way sqlwatch does (callstack.Stack.Capture), starting at
// sqlwatch's own frame. What it keeps is the real stack of the call as
// sqlwatch sees it: the application, the wrappers and builders above
// database/sql, database/sql, and sqlwatch.
type recorder struct {
	inner sqldriver.Driver
	mu    sync.Mutex
	calls []recorded
}

// recorded is one call: its query ("BEGIN" for BeginTx) and its stack.
type recorded struct {
	query string
	st    callstack.Stack
}

// watchRecorded registers sqlwatch's driver over a recorder over the
// driver registered as inner, and returns the registered name and the
// recorder. sqlwatch sees the recorder's package, not the driver's, so the
// pool's redaction dialect is the generic one.
func watchRecorded(t *testing.T, inner string, s *sink) (string, *recorder) {
	t.Helper()
	db, err := sql.Open(inner, "")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{inner: db.Driver()}
	db.Close()
	watched := name(inner + "+rec+watch")
	if err := driver.Register(watched, rec, s.opts()...); err != nil {
		t.Fatal(err)
	}
	return watched, rec
}

func (r *recorder) Open(dsn string) (sqldriver.Conn, error) {
	c, err := r.inner.Open(dsn)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, r: r}, nil
}

// record keeps the stack of the caller of the recConn method that called
// it: sqlwatch's frame.
//
//go:noinline
func (r *recorder) record(query string) {
	var c recorded
	c.query = query
	c.st.Capture(2) // 0 is record, 1 the recConn method, 2 sqlwatch
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// frames returns the symbolized stack of the last call whose query
// contains sub, or fails t.
func (r *recorder) frames(t *testing.T, sub string) []stack.Frame {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.calls) - 1; i >= 0; i-- {
		if strings.Contains(r.calls[i].query, sub) {
			return callstack.Frames(&r.calls[i].st)
		}
	}
	t.Fatalf("no call with %q recorded", sub)
	return nil
}

// recConn passes everything to the driver's conn; BeginTx and a
// successful QueryContext are recorded.
type recConn struct {
	sqldriver.Conn
	r *recorder
}

func (c *recConn) BeginTx(ctx context.Context, opts sqldriver.TxOptions) (sqldriver.Tx, error) {
	c.r.record("BEGIN")
	return c.Conn.(sqldriver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *recConn) QueryContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
	q, ok := c.Conn.(sqldriver.QueryerContext)
	if !ok {
		return nil, sqldriver.ErrSkip
	}
	c.r.record(query)
	return q.QueryContext(ctx, query, args)
}

func (c *recConn) ExecContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	e, ok := c.Conn.(sqldriver.ExecerContext)
	if !ok {
		return nil, sqldriver.ErrSkip
	}
	return e.ExecContext(ctx, query, args)
}

func (c *recConn) PrepareContext(ctx context.Context, query string) (sqldriver.Stmt, error) {
	if p, ok := c.Conn.(sqldriver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *recConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(sqldriver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *recConn) ResetSession(ctx context.Context) error {
	if s, ok := c.Conn.(sqldriver.SessionResetter); ok {
		return s.ResetSession(ctx)
	}
	return nil
}

func (c *recConn) IsValid() bool {
	if v, ok := c.Conn.(sqldriver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *recConn) CheckNamedValue(nv *sqldriver.NamedValue) error {
	if v, ok := c.Conn.(sqldriver.NamedValueChecker); ok {
		return v.CheckNamedValue(nv)
	}
	return sqldriver.ErrSkip
}

// checkRecorded checks the real stack of the last call whose query
// contains sub: the default filter finds its origin at want, and a frame
// of module (the wrapper or builder under test) is in it. With
// SQLWATCH_RECORD_STACKS=1 it writes the stack as the golden fixture
// ../testdata/stacks/NAME.txt, paths normalised to the other fixtures'
// (/home/dev/go/pkg/mod/..., /home/dev/src/sqlwatch/...).
func checkRecorded(t *testing.T, rec *recorder, sub, want, fixture, module, about string) {
	t.Helper()
	frames := rec.frames(t, sub)
	origin, _, ok := callstack.NewFilter().Split(frames)
	if !ok {
		t.Fatalf("recorded stack has no application frame:\n%s", formatFrames(frames))
	}
	sameLine(t, "recorded stack", origin.Location(), want)
	if !strings.HasPrefix(frames[0].Function, "github.com/sqlwatch/sqlwatch/driver.") {
		t.Errorf("recorded stack starts at %s; want sqlwatch's driver", frames[0].Function)
	}
	in := false
	for _, fr := range frames {
		in = in || strings.HasPrefix(fr.Function, module+".") || strings.HasPrefix(fr.Function, module+"/")
	}
	if !in {
		t.Errorf("no frame of %s in the recorded stack:\n%s", module, formatFrames(frames))
	}
	if os.Getenv(recordEnv) != "1" {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Recorded from a real run (%s): %s, integration %s.\n",
		runtimeVersion(), moduleVersion(module), t.Name())
	for _, l := range strings.Split(strings.TrimSpace(about), "\n") {
		fmt.Fprintf(&b, "# %s\n", l)
	}
	b.WriteString("# The innermost frame is sqlwatch's call into the driver under it (a\n")
	b.WriteString("# recorder, integration/record_test.go); paths normalised.\n")
	for _, fr := range frames {
		fmt.Fprintf(&b, "%s\t%s:%d\n", fr.Function, normalise(t, fr.File), fr.Line)
	}
	path := filepath.Join("..", "testdata", "stacks", fixture+".txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// formatFrames renders frames one a line, for failure messages.
func formatFrames(frames []stack.Frame) string {
	var b strings.Builder
	for _, fr := range frames {
		fmt.Fprintf(&b, "\t%s\t%s:%d\n", fr.Function, fr.File, fr.Line)
	}
	return b.String()
}

// normalise maps the module cache to /home/dev/go/pkg/mod and this
// repository to /home/dev/src/sqlwatch; the Go root is kept.
func normalise(t *testing.T, file string) string {
	const mod = "/pkg/mod/"
	if i := strings.Index(file, mod); i >= 0 {
		return "/home/dev/go/pkg/mod/" + file[i+len(mod):]
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if rel, ok := strings.CutPrefix(file, filepath.Dir(wd)+"/"); ok {
		return "/home/dev/src/sqlwatch/" + rel
	}
	return file
}

// moduleVersion returns "path@version" of the module at path, as this
// module's build list has it (go list -m).
func moduleVersion(path string) string {
	out, err := exec.Command("go", "list", "-m", path).Output()
	if f := strings.Fields(string(out)); err == nil && len(f) == 2 {
		return f[0] + "@" + f[1]
	}
	return path
}

// runtimeVersion is the Go version of the test binary.
func runtimeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "go"
}

// quiet fails t if s receives any report or misuse within d.
func (s *sink) quiet(t *testing.T, what string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case r := <-s.reports:
			t.Errorf("%s: got a %s report at %s; want none", what, r.Kind, r.Origin)
		case m := <-s.misuses:
			t.Errorf("%s: got a %s misuse at %s; want none", what, m.Kind, m.Here.Origin)
		case <-timeout:
			return
		}
	}
}
