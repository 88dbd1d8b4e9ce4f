package pgxwatch_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var recordStacks = flag.Bool("record-stacks", false, "write the stacks pgxwatch captures for pool.Acquire, pool.Begin and pool.Query to ../testdata/stacks (stack's golden fixtures)")

// stackTracer, chained under pgxwatch's tracer, records the stack of the
// calls in which pgxwatch captures its own (the same frames, plus this
// tracer's, which it leaves out).
type stackTracer struct {
	mu     sync.Mutex
	stacks map[string]string
	want   string // the name of the next stack to keep
}

func (s *stackTracer) keep(name string) {
	if name == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.stacks[name]; ok {
		return
	}
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs) // from pgxwatch's tracer outward: 0 is Callers, 1 keep, 2 this tracer
	it := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	for {
		f, more := it.Next()
		fmt.Fprintf(&b, "%s\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	s.stacks[name] = b.String()
}

func (s *stackTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if s.want == "pgxpool_query" && strings.HasPrefix(d.SQL, "SELECT") {
		s.keep(s.want)
	}
	return ctx
}

func (s *stackTracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if s.want == "pgxpool_begin" && d.CommandTag.String() == "BEGIN" {
		s.keep(s.want)
	}
}

func (s *stackTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

func (s *stackTracer) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {
	if s.want == "pgxpool_acquire" {
		s.keep(s.want)
	}
}

// TestRecordStacks writes, with -record-stacks, the fixtures of stack's
// golden test from a real run: where pgxwatch captures the stack of a
// pool.Acquire (its acquire tracer), of a pool.Begin (its query tracer, at
// the end of the BEGIN) and of a pool.Query (at the query's start).
// Without the flag it only checks that the stacks are captured.
func TestRecordStacks(t *testing.T) {
	rec := &stackTracer{stacks: map[string]string{}}
	s := open(t, false, func(c *pgxpool.Config) { c.ConnConfig.Tracer = rec })
	ctx := context.Background()

	rec.want = "pgxpool_acquire"
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()

	rec.want = "pgxpool_begin"
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)

	rec.want = "pgxpool_query"
	rows, err := s.pool.Query(ctx, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	rec.want = ""

	descr := map[string]string{
		"pgxpool_acquire": "pool.Acquire, as pgxwatch's acquire tracer sees it (in Acquire's deferred function)",
		"pgxpool_begin":   "pool.Begin, as pgxwatch's query tracer sees it at the end of the BEGIN",
		"pgxpool_query":   "pool.Query, as pgxwatch's query tracer sees it at the query's start",
	}
	for name, d := range descr {
		st := rec.stacks[name]
		if !strings.Contains(st, "pgxwatch_test.TestRecordStacks") {
			t.Errorf("%s: no stack with the test's frame:\n%s", name, st)
			continue
		}
		if !*recordStacks {
			continue
		}
		text := "# " + d + ".\n# Recorded from a real run: go test ./pgxwatch -run TestRecordStacks -record-stacks; paths normalised.\n" + normalise(t, st)
		if err := os.WriteFile(filepath.Join("..", "testdata", "stacks", name+".txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// normalise maps the module cache to /home/dev/go/pkg/mod and this
// repository to /home/dev/src/sqlwatch, as in the other fixtures.
func normalise(t *testing.T, st string) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	st = strings.ReplaceAll(st, strings.TrimSpace(string(out))+"/", "/home/dev/go/pkg/mod/")
	return strings.ReplaceAll(st, repo+"/", "/home/dev/src/sqlwatch/")
}
