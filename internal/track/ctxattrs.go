package track

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Bounds on the attributes [Config.ContextAttrs] returns, so that what a
// user's function returns cannot pin unbounded memory in a long-lived
// resource: at most MaxContextAttrs attributes, each key cut to
// MaxContextKey bytes and each value, as text, to MaxContextValue bytes.
const (
	MaxContextAttrs = 8
	MaxContextKey   = 64
	MaxContextValue = 256
)

// HasContextAttrs reports whether Config.ContextAttrs is set.
func (t *Tracker) HasContextAttrs() bool { return t.cfg.ContextAttrs != nil }

// Attrs returns the resource's context attributes (Opening.Attrs or
// SetAttrs); nil after it is closed and reused. Only the resource's owner
// (the driver's wrapper, under database/sql's serialization of a conn's
// calls) may call it.
func (r *Resource) Attrs() []slog.Attr { return r.attrs }

// SetAttrs sets the context attributes of the open resource r, from
// [Tracker.ContextAttrs]: a conn checkout's, taken at its first statement
// (database/sql gives no context at checkout). It takes r's shard lock
// unless attrs is nil (r's are nil already: cleared when r was opened).
// Only r's owner may call it, while r is open.
func (r *Resource) SetAttrs(attrs []slog.Attr) {
	if attrs == nil {
		return
	}
	s := r.shard
	s.mu.Lock()
	r.attrs = attrs
	s.mu.Unlock()
}

// ContextAttrs returns the attributes [Config.ContextAttrs] takes from
// ctx, bounded and as strings, or nil when the option is not set, the
// function returns none or it panics (counted in Stats.Panics). It is
// small enough to inline: without the option it costs one load and one
// comparison.
func (t *Tracker) ContextAttrs(ctx context.Context) []slog.Attr {
	if t.cfg.ContextAttrs == nil {
		return nil
	}
	return t.contextAttrs(ctx)
}

func (t *Tracker) contextAttrs(ctx context.Context) (out []slog.Attr) {
	defer func() {
		if r := recover(); r != nil {
			t.panics.Add(1)
			out = nil
		}
	}()
	in := t.cfg.ContextAttrs(ctx)
	if len(in) == 0 {
		return nil
	}
	n := min(len(in), MaxContextAttrs)
	out = make([]slog.Attr, 0, n)
	for _, a := range in {
		if len(out) == n {
			break
		}
		if a.Key == "" {
			continue
		}
		v := a.Value.Resolve()
		var s string
		if v.Kind() == slog.KindString {
			s = v.String()
		} else {
			s = fmt.Sprint(v.Any())
		}
		// Copies, not substrings: a cut value must not pin the user's
		// larger string.
		out = append(out, slog.String(strings.Clone(cut(a.Key, MaxContextKey)), strings.Clone(cut(s, MaxContextValue))))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// cut returns s cut to at most n bytes, on a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// attrMap returns attrs as a map, or nil when there are none.
func attrMap(attrs []slog.Attr) map[string]string {
	if len(attrs) == 0 {
		return nil
	}
	m := make(map[string]string, len(attrs))
	for _, a := range attrs {
		m[a.Key] = a.Value.String()
	}
	return m
}

// FormatAttrs writes attrs as "key=value key=value", for one-line text
// (the test gate's failure).
func FormatAttrs(attrs []slog.Attr) string {
	var b strings.Builder
	for i, a := range attrs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", a.Key, a.Value.String())
	}
	return b.String()
}
