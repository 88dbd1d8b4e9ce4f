package driver

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ngrok/sqlmw"

	"github.com/sqlwatch/sqlwatch/internal/callstack"
	"github.com/sqlwatch/sqlwatch/internal/settings"
	"github.com/sqlwatch/sqlwatch/internal/track"
	"github.com/sqlwatch/sqlwatch/leak"
)

// An Option configures a wrapped driver or connector; options apply in
// order, and an invalid one is an error wrapping [ErrInvalidOption].
type Option interface {
	apply(*options) error
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

type options struct {
	dbName      string
	leak        track.Config
	libraries   []string
	interceptor sqlmw.Interceptor
	disabled    detectors
}

func buildOptions(opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.apply(o); err != nil {
			return nil, err
		}
	}
	if len(o.libraries) > 0 {
		o.leak.Filter = callstack.NewFilter(o.libraries...)
	}
	return o, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithDBName names the pool in reports and metrics. Default: host, port and
// database read from the DSN (never user, password or parameters), the
// SQLite file's base name, or the driver's name (docs/dsn-names.md).
func WithDBName(name string) Option {
	return optionFunc(func(o *options) error {
		if name == "" {
			return invalid("empty db name")
		}
		o.dbName = name
		return nil
	})
}

// WithLogger sets the logger for leak reports. Default: slog.Default() at
// the time the pool is opened.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		if l == nil {
			return invalid("nil logger")
		}
		o.leak.Logger = l
		return nil
	})
}

// WithThreshold sets how long a resource of kind k may stay open before it
// is reported; 0 turns reporting off. Default: 1 min; stmt: off.
func WithThreshold(k leak.Kind, d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if k < track.KindTx || k > track.KindStmt {
			return invalid("unknown kind %v", k)
		}
		if d < 0 {
			return invalid("negative %s threshold %v", k, d)
		}
		o.leak.Thresholds[k] = d
		o.leak.ThresholdsSet[k] = true
		return nil
	})
}

// WithInterval sets how often the watchdog scans for leaks. Default one
// second, or half the smallest threshold when that is shorter.
func WithInterval(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("interval %v is not positive", d)
		}
		o.leak.Interval = d
		return nil
	})
}

// WithContextAttrs has sqlwatch call f with the context a transaction is
// begun under (the one given to BeginTx), once per transaction; with the
// context of a conn checkout's first call that has one (a statement,
// BeginTx, Prepare, Ping), once per checkout; with the context of a query
// that opens rows outside a transaction; and with the context of a
// statement that shows a misuse. It shows the attributes f returns — a
// request id, a route, an OpenTelemetry trace and span id — in the
// transaction's, conn's or rows' leak report and release line
// (leak.Report.Attrs), in misuse reports (Site.Attrs of both sides,
// TxHolder.Attrs), in pool alerts (Holder.Attrs), on the live page and in
// the test gate's failure. A conn taken again from the pool never shows an
// earlier checkout's. f should return nil quickly when the context carries
// nothing. The attributes are the user's choice and are logged as they are:
// they must not carry secrets. At most 8 are kept, keys cut to 64 bytes,
// values turned to text and cut to 256 bytes; a panic in f is recovered and
// counted. Without this option nothing is called. See docs/integrations.md.
func WithContextAttrs(f func(ctx context.Context) []slog.Attr) Option {
	return optionFunc(func(o *options) error {
		if f == nil {
			return invalid("nil context attrs func")
		}
		o.leak.ContextAttrs = f
		return nil
	})
}

// WithReportFunc sets a callback that receives every report the watchdog
// logs (leaks and their releases), on the watchdog goroutine; a panic in it
// is recovered and counted.
func WithReportFunc(f func(leak.Report)) Option {
	return optionFunc(func(o *options) error {
		o.leak.OnReport = f
		return nil
	})
}

// WithReportLimit rate-limits leak reports per pool: burst at once, then
// perMinute; the excess is counted. Default: 10, then 60 per minute.
func WithReportLimit(perMinute, burst int) Option {
	return optionFunc(func(o *options) error {
		if perMinute <= 0 || burst <= 0 {
			return invalid("report limit %d/min, burst %d: both must be positive", perMinute, burst)
		}
		o.leak.ReportsPerMinute, o.leak.ReportBurst = perMinute, burst
		return nil
	})
}

// WithQueryLimit sets how many bytes of SQL text a report keeps (200).
func WithQueryLimit(n int) Option {
	return optionFunc(func(o *options) error {
		if n <= 0 {
			return invalid("query limit %d is not positive", n)
		}
		o.leak.QueryLimit = n
		return nil
	})
}

// WithRedactedSQL replaces the literals and comments in the SQL text of
// every report, the live page and the gate with "?", read in the wrapped
// driver's dialect (docs/integrations.md). It costs nothing per statement.
func WithRedactedSQL() Option {
	return optionFunc(func(o *options) error {
		o.leak.RedactSQL = true
		return nil
	})
}

// WithLibraries adds import-path prefixes, beside [stack.DefaultLibraries],
// whose frames are never a report's origin (your own data-access package).
func WithLibraries(prefixes ...string) Option {
	return optionFunc(func(o *options) error {
		o.libraries = append(o.libraries, prefixes...)
		return nil
	})
}

// WithInterceptor adds an ngrok/sqlmw Interceptor, called around every
// driver call as sqlmw would call it.
func WithInterceptor(i sqlmw.Interceptor) Option {
	return optionFunc(func(o *options) error {
		if i == nil {
			return invalid("nil interceptor")
		}
		o.interceptor = i
		return nil
	})
}

// WithoutDetectors turns misuse detectors off by kind (leak.MisuseKinds).
func WithoutDetectors(kinds ...string) Option {
	return optionFunc(func(o *options) error {
		for _, k := range kinds {
			d, ok := detectorNames[k]
			if !ok {
				return invalid("unknown detector %q (want one of %v)", k, track.MisuseKinds[:])
			}
			o.disabled |= d
		}
		return nil
	})
}

// WithMisuseFunc sets a callback that receives every misuse report, on the
// watchdog goroutine.
func WithMisuseFunc(f func(leak.Misuse)) Option {
	return optionFunc(func(o *options) error {
		o.leak.OnMisuse = f
		return nil
	})
}

func init() {
	settings.Build = func(opts any) (settings.Settings, error) {
		list, _ := opts.([]Option)
		o, err := buildOptions(list)
		if err != nil {
			return settings.Settings{}, err
		}
		return o.settings(), nil
	}
	settings.PoolName = func(host, port, database string) string {
		t := dsnTarget{hosts: []string{host}, ports: []string{port}, db: database}
		return printable(t.name())
	}
}

// settings is what o sets, as other instrumentations take it.
func (o *options) settings() settings.Settings {
	return settings.Settings{DBName: o.dbName, Leak: o.leak, Interceptor: o.interceptor != nil}
}
