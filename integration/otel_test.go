package integration

import (
	"context"
	"database/sql"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// otelAttrs is docs/integrations.md's WithContextAttrs function: the
// trace and span id of the OpenTelemetry span in the context, if any.
func otelAttrs(ctx context.Context) []slog.Attr {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())}
}

// TestContextAttrsOtelTrace (issue 18, item 4): a tx begun under a
// context carrying an OpenTelemetry span is reported with its trace and
// span id, on MariaDB and PostgreSQL (pgx); one begun without a span
// carries none.
func TestContextAttrsOtelTrace(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	span := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	for _, c := range []struct{ inner, env string }{{"mysql", mysqlEnv}, {"pgx", postgresEnv}} {
		t.Run(c.inner, func(t *testing.T) {
			d := dsn(t, c.env)
			s := newSink()
			watched := name("otel-attrs-" + c.inner)
			if err := driver.RegisterByName(watched, c.inner, s.opts(driver.WithContextAttrs(otelAttrs))...); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(watched, d)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			tx, err := db.BeginTx(span, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := s.leak(t, leak.KindTx)
			want := map[string]string{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
			got := map[string]string{}
			for _, a := range r.Attrs {
				got[a.Key] = a.Value.String()
			}
			if len(got) != 2 || got["trace_id"] != want["trace_id"] || got["span_id"] != want["span_id"] {
				t.Errorf("attrs %v; want %v", got, want)
			}
			tx.Rollback()

			tx, err = db.BeginTx(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if r := s.leak(t, leak.KindTx); r.Attrs != nil {
				t.Errorf("a tx without a span has attrs %v", r.Attrs)
			}
		})
	}
}
