package track

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"
)

func newAttrTracker(t *testing.T, f func(context.Context) []slog.Attr) *Tracker {
	t.Helper()
	tr, err := NewTracker(Config{Logger: slog.New(slog.DiscardHandler), Interval: time.Hour, ContextAttrs: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Stop() })
	return tr
}

// TestContextAttrsBounded: what the user's function returns is bounded —
// at most MaxContextAttrs, keys and values cut (on a rune boundary),
// values as text, empty keys left out — so it cannot pin unbounded memory.
func TestContextAttrsBounded(t *testing.T) {
	big := strings.Repeat("é", 1000)
	tr := newAttrTracker(t, func(context.Context) []slog.Attr {
		out := []slog.Attr{{Key: "", Value: slog.StringValue("x")}, slog.Int("n", 42), slog.String(big, big)}
		for range 20 {
			out = append(out, slog.String("k", "v"))
		}
		return out
	})
	got := tr.ContextAttrs(context.Background())
	if len(got) != MaxContextAttrs {
		t.Fatalf("%d attrs; want %d", len(got), MaxContextAttrs)
	}
	if got[0].Key != "n" || got[0].Value.Kind() != slog.KindString || got[0].Value.String() != "42" {
		t.Errorf("first attr %v; want n=\"42\" as a string", got[0])
	}
	k, v := got[1].Key, got[1].Value.String()
	if len(k) > MaxContextKey || len(v) > MaxContextValue || !utf8.ValidString(k) || !utf8.ValidString(v) || len(v) < MaxContextValue-1 {
		t.Errorf("long attr cut to key %d, value %d bytes (valid %v %v); want at most %d, %d", len(k), len(v),
			utf8.ValidString(k), utf8.ValidString(v), MaxContextKey, MaxContextValue)
	}
}

// TestContextAttrsPanicQuiet: a panic in the user's function gives no
// attrs and is counted, never reaching the application.
func TestContextAttrsPanicQuiet(t *testing.T) {
	tr := newAttrTracker(t, func(context.Context) []slog.Attr { panic("boom") })
	if got := tr.ContextAttrs(context.Background()); got != nil {
		t.Errorf("attrs %v after a panic", got)
	}
	if n := tr.Stats().Panics; n != 1 {
		t.Errorf("panics %d; want 1", n)
	}
}

// TestContextAttrsOffNoCall: without the option nothing is called.
func TestContextAttrsOffNoCall(t *testing.T) {
	tr := newAttrTracker(t, nil)
	if got := tr.ContextAttrs(context.Background()); got != nil {
		t.Errorf("attrs %v without the option", got)
	}
	if n := testing.AllocsPerRun(100, func() { tr.ContextAttrs(context.Background()) }); n != 0 {
		t.Errorf("%v allocs without the option", n)
	}
}

// TestContextAttrsCopiedInTwoAllocs: keys and values are copies (a value
// never shares the user's string's memory, so a cut one cannot pin it),
// made with two allocations whatever the number of attributes.
func TestContextAttrsCopiedInTwoAllocs(t *testing.T) {
	user := strings.Repeat("v", 4096)
	in := []slog.Attr{slog.String("request_id", user[:12]), slog.String("route", user), slog.String("trace_id", user[:32])}
	tr := newAttrTracker(t, func(context.Context) []slog.Attr { return in })
	got := tr.ContextAttrs(context.Background())
	if len(got) != 3 || got[0].Key != "request_id" || got[0].Value.String() != user[:12] ||
		got[1].Key != "route" || got[1].Value.String() != user[:MaxContextValue] || got[2].Value.String() != user[:32] {
		t.Fatalf("attrs %v", got)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(user)))
	hi := lo + uintptr(len(user))
	for _, a := range got {
		p := uintptr(unsafe.Pointer(unsafe.StringData(a.Value.String())))
		if p >= lo && p < hi {
			t.Errorf("value of %s shares the user's string's memory", a.Key)
		}
	}
	if n := testing.AllocsPerRun(100, func() { tr.ContextAttrs(context.Background()) }); n != 2 {
		t.Errorf("%v allocations; want 2 (the attrs and one string for their text)", n)
	}
}
