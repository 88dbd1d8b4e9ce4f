package driver

import (
	"context"
	"database/sql/driver"

	"github.com/sqlwatch/sqlwatch/internal/frames"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

var _ driver.Tx = (*tx)(nil)

// tx wraps a driver transaction. Its tracking starts at BeginTx and ends
// at Commit or Rollback, whatever they return; Rollback may run on
// database/sql's watcher goroutine when the context ends.
type tx struct {
	inner driver.Tx
	c     *conn
	res   *track.Resource
	ctx   context.Context // as returned by the interceptor, for its Tx calls
	begin context.Context // the context BeginTx was given

	// tx_bypass (see txIndex): the goroutine that began it, the
	// application's frame that began it and the address in that frame,
	// set once at BeginTx; whether it is listed and the next older tx
	// listed, guarded by the txIndex shard's lock.
	goid   int64
	mark   frames.Mark
	at     uintptr
	listed bool
	older  *tx
}

func (t *tx) Commit() error {
	var err error
	start := t.c.p.begin()
	if ic := t.c.p.ic; ic != nil {
		err = ic.TxCommit(t.ctx, t.inner)
	} else {
		err = t.inner.Commit()
	}
	t.c.p.done(record.OpCommit, start, err)
	if err != nil {
		t.c.failed(t.begin, err, "COMMIT")
	}
	t.end(record.TxCommit, err)
	return err
}

func (t *tx) Rollback() error {
	var err error
	start := t.c.p.begin()
	if ic := t.c.p.ic; ic != nil {
		err = ic.TxRollback(t.ctx, t.inner)
	} else {
		err = t.inner.Rollback()
	}
	t.c.p.done(record.OpRollback, start, err)
	if err != nil {
		t.c.failed(t.begin, err, "ROLLBACK")
	}
	// database/sql discards the conn after a rollback caused by the end
	// of the context unless the driver has both SessionResetter and
	// Validator. sqlwatch always claims Validator, so for a driver with
	// SessionResetter only it makes the next IsValid fail instead: the
	// conn is discarded just as it would have been.
	if t.c.resetterOnly && t.begin.Err() != nil && calledFromAwaitDone() {
		t.c.discard = true
	}
	t.end(record.TxRollback, err)
	return err
}

// end stops tracking the tx and records its duration.
func (t *tx) end(o record.TxOutcome, err error) {
	if t.res == nil {
		return // ended already (its conn was closed under it)
	}
	if t.c.p.rec.Enabled() {
		if err != nil {
			o = record.TxError
		}
		t.c.p.rec.TxEnded(o, t.res.Elapsed())
	}
	if t.at != 0 {
		t.c.p.txs.remove(t.goid, t)
	}
	t.c.p.tracker.Close(t.res)
	t.res = nil // recycled
	if t.c.tx == t {
		t.c.tx = nil
	}
}
