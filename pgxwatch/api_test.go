package pgxwatch_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ngrok/sqlmw"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/pgxwatch"
)

func TestInstrumentErrors(t *testing.T) {
	if _, err := pgxwatch.Instrument(nil); !errors.Is(err, pgxwatch.ErrNilConfig) {
		t.Errorf("nil config: got %v; want ErrNilConfig", err)
	}
	cfg, err := pgxpool.ParseConfig("postgres://u:secret@db.example:5433/orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgxwatch.Instrument(cfg, driver.WithThreshold(leak.KindTx, -1)); !errors.Is(err, driver.ErrInvalidOption) {
		t.Errorf("negative threshold: got %v; want ErrInvalidOption", err)
	}
	if _, err := pgxwatch.Instrument(cfg, driver.WithInterceptor(sqlmw.NullInterceptor{})); !errors.Is(err, driver.ErrInvalidOption) {
		t.Errorf("interceptor: got %v; want ErrInvalidOption", err)
	}
	if cfg.ConnConfig.Tracer != nil {
		t.Errorf("a failed Instrument set the tracer")
	}
	w, err := pgxwatch.Instrument(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got, want := w.DBName(), "db.example:5433/orders"; got != want {
		t.Errorf("DBName %q; want %q", got, want)
	}
	if _, err := pgxwatch.Instrument(cfg); !errors.Is(err, pgxwatch.ErrInstrumented) {
		t.Errorf("twice: got %v; want ErrInstrumented", err)
	}
	if _, err := w.NewMonitor(nil, leak.MonitorConfig{}); !errors.Is(err, leak.ErrNotWatched) {
		t.Errorf("nil pool monitor: got %v", err)
	}
	if err := w.Register(nil, nil); err == nil {
		t.Error("nil registerer: no error")
	}
}

// TestDefaultName: the default db_name is the driver's for the same
// target: an IPv6 host in brackets, control characters replaced, never
// the user or password.
func TestDefaultName(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://u:secret@[::1]:5433/orders")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = "ord\x1bers"
	w, err := pgxwatch.Instrument(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got, want := w.DBName(), "[::1]:5433/ord?ers"; got != want {
		t.Errorf("DBName %q; want %q", got, want)
	}
}
