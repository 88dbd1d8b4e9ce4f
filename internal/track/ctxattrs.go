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
	// Keys and values are copied, not kept as substrings, so that a cut
	// value cannot pin the user's larger string: into one string for all
	// of them (two allocations in all, with the slice).
	var (
		parts [2 * MaxContextAttrs]string
		np    int
		size  int
	)
	for _, a := range in {
		if np == 2*n {
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
		parts[np], parts[np+1] = cut(a.Key, MaxContextKey), cut(s, MaxContextValue)
		size += len(parts[np]) + len(parts[np+1])
		np += 2
	}
	if np == 0 {
		return nil
	}
	var b strings.Builder
	b.Grow(size)
	for _, p := range parts[:np] {
		b.WriteString(p)
	}
	all := b.String()
	out = make([]slog.Attr, 0, np/2)
	for i := 0; i < np; i += 2 {
		k := all[:len(parts[i])]
		all = all[len(parts[i]):]
		v := all[:len(parts[i+1])]
		all = all[len(parts[i+1]):]
		out = append(out, slog.String(k, v))
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
