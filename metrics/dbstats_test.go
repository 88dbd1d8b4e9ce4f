package metrics_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sqlwatch/sqlwatch/metrics"
)

// families gathers reg and counts the families whose name starts with
// prefix, failing on a gather or lint problem.
func families(t *testing.T, reg *prometheus.Registry, prefix string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), prefix) {
			n++
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	return n
}

// TestRegisterBesideDBStatsCollector: an application that registers
// client_golang's DBStats collector for the pool itself can still call
// Register: go_sql_* comes from its collector, sqlwatch_* from ours. On
// the old code Register failed with ErrAlreadyRegistered.
func TestRegisterBesideDBStatsCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	db := openDB(t, "orders")
	if err := reg.Register(collectors.NewDBStatsCollector(db, "orders")); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Register(reg, db); err != nil {
		t.Fatalf("Register beside the application's DBStats collector: %v", err)
	}
	if n := families(t, reg, "go_sql_"); n != 9 {
		t.Errorf("%d go_sql_* families; want 9 (once each)", n)
	}
	if n := families(t, reg, "sqlwatch_"); n < 10 {
		t.Errorf("%d sqlwatch_* families; want them all", n)
	}
	// Registering the pool again is still refused.
	if err := metrics.Register(reg, db); !errors.Is(err, metrics.ErrAlreadyRegistered) {
		t.Errorf("second Register: %v; want ErrAlreadyRegistered", err)
	}

	// Without the application's collector, Register brings go_sql_*.
	reg2 := prometheus.NewPedanticRegistry()
	if err := metrics.Register(reg2, openDB(t, "payments")); err != nil {
		t.Fatal(err)
	}
	if n := families(t, reg2, "go_sql_"); n != 9 {
		t.Errorf("%d go_sql_* families; want 9", n)
	}
	// A DBStats collector under another name is no collision: both stay.
	reg3 := prometheus.NewPedanticRegistry()
	db3 := openDB(t, "reports")
	reg3.MustRegister(collectors.NewDBStatsCollector(db3, "other"))
	if err := metrics.Register(reg3, db3); err != nil {
		t.Fatal(err)
	}
}
