package pgxwatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sqlwatch/sqlwatch/leak"
)

// TestCorrectWorkload runs every correct way of using the pool, from
// several goroutines, many times: nothing may be reported, nothing may
// stay open, and the pool's counters must agree.
func TestCorrectWorkload(t *testing.T) {
	s := open(t, false, func(c *pgxpool.Config) { c.MaxConns = 4 })
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	if err := s.w.Register(reg, s.pool); err != nil { // metrics on: the timed paths run too
		t.Fatal(err)
	}
	table := "sqlwatch_pgxwatch_workload"
	if _, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "CREATE TABLE "+table+" (id BIGINT PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.pool.Exec(context.Background(), "DROP TABLE "+table) })

	var ids atomic.Int64
	step := func(i int) error {
		id := ids.Add(1)
		switch i % 9 {
		case 0: // acquire, use, release
			c, err := s.pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer c.Release()
			_, err = c.Exec(ctx, "INSERT INTO "+table+" (id, name) VALUES ($1, 'a')", id)
			return err
		case 1: // begin, commit
			tx, err := s.pool.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, name) VALUES ($1, 'b')", id); err != nil {
				return err
			}
			return tx.Commit(ctx)
		case 2: // begin, rollback
			tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (id, name) VALUES ($1, 'c')", id); err != nil {
				return err
			}
			return tx.Rollback(ctx)
		case 3: // query, read all, close
			rows, err := s.pool.Query(ctx, "SELECT id FROM "+table+" LIMIT 5")
			if err != nil {
				return err
			}
			_, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		case 4: // QueryRow
			var n int
			return s.pool.QueryRow(ctx, "SELECT $1::int", i).Scan(&n)
		case 5: // SendBatch
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			b.Queue("INSERT INTO "+table+" (id, name) VALUES ($1, 'd')", id)
			return s.pool.SendBatch(ctx, b).Close()
		case 6: // CopyFrom
			_, err := s.pool.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "name"},
				pgx.CopyFromRows([][]any{{id*1000000 + 1, "e"}, {id*1000000 + 2, "e"}}))
			return err
		case 7: // a tx with a query whose rows are closed, and BeginFunc
			return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, "SELECT id FROM "+table+" LIMIT 2")
				if err != nil {
					return err
				}
				rows.Close()
				_, err = tx.Exec(ctx, "UPDATE "+table+" SET name = 'f' WHERE id = $1", id)
				return err
			})
		default: // a failing statement in a tx, then rollback; a failing query
			tx, err := s.pool.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SELEC nonsense"); err == nil {
				return errors.New("syntax error not returned")
			}
			if err := tx.Rollback(ctx); err != nil {
				return err
			}
			if _, err := s.pool.Query(ctx, "SELEC nonsense"); err == nil {
				return errors.New("syntax error not returned")
			}
			return nil
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 90 {
				if err := step(g + i); err != nil {
					errs <- fmt.Errorf("goroutine %d step %d: %w", g, (g+i)%9, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Some steps are slower than a threshold apart: wait past them all.
	if err := s.ch.none(700 * time.Millisecond); err != nil {
		t.Error(err)
	}
	if open := s.w.Snapshot(); len(open) != 0 {
		t.Errorf("%d resources open after the workload, the first %s at %s", len(open), open[0].Kind, open[0].Origin)
	}
	st := s.w.Stats()
	if st.Reported != 0 || st.Released != 0 || st.Panics != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v; want no report", st)
	}
	if n, err := testutil.GatherAndCount(reg, "sqlwatch_tx_duration_seconds"); err != nil || n == 0 {
		t.Errorf("sqlwatch_tx_duration_seconds: %d series, %v", n, err)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
	want := map[string]bool{"commit": false, "rollback": false}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "sqlwatch_tx_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && m.GetHistogram().GetSampleCount() > 0 {
					want[l.GetValue()] = true
				}
			}
		}
	}
	for o, seen := range want {
		if !seen {
			t.Errorf("no transaction recorded with outcome %s", o)
		}
	}
	_ = leak.KindTx
}
