package pgxwatch

import (
	"context"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlwatch/sqlwatch/internal/clock"
	"github.com/sqlwatch/sqlwatch/internal/frames"
	"github.com/sqlwatch/sqlwatch/internal/record"
	"github.com/sqlwatch/sqlwatch/internal/track"
)

// The tracer claims every tracer interface of pgx and pgxpool; each call
// goes to the user's tracer too when it implements that interface.
var (
	_ pgx.QueryTracer       = (*tracer)(nil)
	_ pgx.BatchTracer       = (*tracer)(nil)
	_ pgx.CopyFromTracer    = (*tracer)(nil)
	_ pgx.PrepareTracer     = (*tracer)(nil)
	_ pgx.ConnectTracer     = (*tracer)(nil)
	_ pgxpool.AcquireTracer = (*tracer)(nil)
	_ pgxpool.ReleaseTracer = (*tracer)(nil)
)

// tracer is cfg.ConnConfig.Tracer of an instrumented config. It calls the
// user's tracer first on the way in (Start, Acquire start) and last on
// the way out, so that theirs sees the call as it would without sqlwatch.
type tracer struct {
	w *Watch

	q  pgx.QueryTracer
	b  pgx.BatchTracer
	cf pgx.CopyFromTracer
	p  pgx.PrepareTracer
	cn pgx.ConnectTracer
	a  pgxpool.AcquireTracer
	r  pgxpool.ReleaseTracer
}

func newTracer(w *Watch, user pgx.QueryTracer) *tracer {
	tr := &tracer{w: w, q: user}
	if user != nil {
		tr.b, _ = user.(pgx.BatchTracer)
		tr.cf, _ = user.(pgx.CopyFromTracer)
		tr.p, _ = user.(pgx.PrepareTracer)
		tr.cn, _ = user.(pgx.ConnectTracer)
		tr.a, _ = user.(pgxpool.AcquireTracer)
		tr.r, _ = user.(pgxpool.ReleaseTracer)
	}
	return tr
}

// connState is what sqlwatch keeps per pgx connection, in its
// PgConn().CustomData(). pgx conns are used by one goroutine at a time (the
// pool hands them over under its lock), so its fields need no lock.
type connState struct {
	res  *track.Resource // the current checkout (Acquire to Release); nil when not acquired
	tx   *track.Resource // the open transaction, seen from the conn's status
	rows *track.Resource // the open result set or batch

	// The resources' storage, reused by the conn's next ones.
	resBuf, txBuf, rowsBuf track.Resource

	start int64  // when the statement in flight began (internal/clock), 0 when metrics are off
	sql   string // the Exec in flight
}

// stateKey is the CustomData key of a conn's connState.
const stateKey = "sqlwatch"

// stateOf returns conn's state, making it on first use.
func stateOf(conn *pgx.Conn) *connState {
	m := conn.PgConn().CustomData()
	if st, ok := m[stateKey].(*connState); ok {
		return st
	}
	st := &connState{}
	m[stateKey] = st
	return st
}

// lookup returns conn's state, or nil when it has none.
func lookup(conn *pgx.Conn) *connState {
	if conn == nil {
		return nil
	}
	st, _ := conn.PgConn().CustomData()[stateKey].(*connState)
	return st
}

// TraceAcquireStart only calls the user's tracer.
func (tr *tracer) TraceAcquireStart(ctx context.Context, pool *pgxpool.Pool, data pgxpool.TraceAcquireStartData) context.Context {
	if tr.a != nil {
		ctx = tr.a.TraceAcquireStart(ctx, pool, data)
	}
	return ctx
}

// TraceAcquireEnd opens the checkout, with the acquiring goroutine's stack
// (pgxpool calls it in Acquire's deferred function, under the caller's
// frames) and the context attributes of Acquire's context
// (driver.WithContextAttrs).
func (tr *tracer) TraceAcquireEnd(ctx context.Context, pool *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	if data.Err == nil && data.Conn != nil {
		st := stateOf(data.Conn)
		t := tr.w.t
		if st.res != nil { // never released through the tracer (a hijacked conn's earlier life)
			t.Close(st.res)
		}
		st.res = t.OpenIn(&st.resBuf, track.KindConn, 1)
		st.res.SetAttrs(t.ContextAttrs(ctx)) // Acquire's context; nil without the option
	}
	if tr.a != nil {
		tr.a.TraceAcquireEnd(ctx, pool, data)
	}
}

// TraceRelease ends the checkout, and the tx and rows still open on it:
// pgxpool destroys a conn released busy or inside a transaction.
func (tr *tracer) TraceRelease(pool *pgxpool.Pool, data pgxpool.TraceReleaseData) {
	if tr.r != nil {
		tr.r.TraceRelease(pool, data)
	}
	st := lookup(data.Conn)
	if st == nil {
		return
	}
	t := tr.w.t
	if st.rows != nil {
		t.Close(st.rows)
		st.rows = nil
	}
	if st.tx != nil {
		tr.endTx(st, record.TxError)
	}
	if st.res != nil {
		if tr.w.rec.Enabled() {
			t.CloseHeld(st.res, st.res.Elapsed())
		} else {
			t.Close(st.res)
		}
		st.res = nil
	}
}

// queryPCs remembers, per return address, whether it is in
// pgx.(*Conn).Query: TraceQueryStart is called by Query, whose rows stay
// open until Close, and by Exec, which ends before it returns.
var queryPCs frames.Cache

// connQuery is the function whose calls open rows.
const connQuery = "github.com/jackc/pgx/v5.(*Conn).Query"

// inQuery decides queryPCs' bit: it symbolizes, once per address.
func inQuery(pc uintptr) bool {
	f := runtime.FuncForPC(pc - 1)
	return f != nil && f.Name() == connQuery
}

// calledByQuery reports whether the caller of TraceQueryStart is
// pgx.(*Conn).Query, directly or through up to 3 frames of tracers that
// wrap this one (pgx's multitracer). It walks 4 return addresses and
// symbolizes none after the first time.
//
//go:noinline
func calledByQuery() bool {
	var pcs [5]uintptr
	n, _ := frames.Callers(1, pcs[:], false) // pcs[0] returns into TraceQueryStart's caller
	for _, pc := range pcs[:n] {
		if queryPCs.Get(pc, inQuery) {
			return true
		}
	}
	return false
}

// TraceQueryStart opens the rows of a Query (tracked until pgx's rows
// call TraceQueryEnd at Close) and starts timing an Exec.
func (tr *tracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if tr.q != nil {
		ctx = tr.q.TraceQueryStart(ctx, conn, data)
	}
	st := stateOf(conn)
	st.start = 0
	if tr.w.rec.Enabled() {
		st.start = clock.Now()
	}
	if calledByQuery() {
		tr.openRows(ctx, st, data.SQL)
		st.tx.Note(data.SQL)
	} else {
		st.sql = data.SQL
	}
	return ctx
}

// openRows opens st's rows (a Query's, or a batch's results) with q as
// their query and ctx's attributes, with the stack of its caller's
// caller, pgx's. Rows a conn never ended are closed first (pgx ends a
// conn's rows before its next query).
func (tr *tracer) openRows(ctx context.Context, st *connState, q string) {
	t := tr.w.t
	if st.rows != nil {
		t.Close(st.rows)
	}
	st.rows = t.OpenLike(track.KindRows, track.Opening{Into: &st.rowsBuf, Holder: st.res, Query: q, NoteHolder: true, Slot: -1,
		Attrs: t.ContextAttrs(ctx)}, 2)
}

// TraceQueryEnd ends a Query's rows or an Exec, and opens or ends the
// conn's transaction when the statement changed the conn's status.
func (tr *tracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if st := lookup(conn); st != nil {
		tr.queryEnd(ctx, conn, st, data)
	}
	if tr.q != nil {
		tr.q.TraceQueryEnd(ctx, conn, data)
	}
}

func (tr *tracer) queryEnd(ctx context.Context, conn *pgx.Conn, st *connState, data pgx.TraceQueryEndData) {
	var d time.Duration
	timed := st.start != 0
	if timed {
		d = clock.Since(st.start)
	}
	if rows := st.rows; rows != nil {
		tr.txStatus(ctx, conn, st, rows, data.CommandTag)
		if timed {
			tr.w.rec.Done(record.OpQuery, d, data.Err)
		}
		tr.w.t.Close(rows)
		st.rows = nil
		return
	}
	// An Exec: its caller is still on the stack, for a tx it begins.
	q := st.sql
	st.sql = "" // pins no memory between statements
	op := tr.txStatus(ctx, conn, st, nil, data.CommandTag)
	slot := -1
	if timed {
		if st.res != nil {
			slot = int(op)
			tr.w.rec.Failed(op, data.Err)
		} else {
			tr.w.rec.Done(op, d, data.Err)
		}
	}
	st.res.NoteTimed(q, slot, d)
	if op == record.OpExec {
		st.tx.Note(q)
	}
}

// txStatus opens or ends st's tx from the conn's transaction status after
// a statement: like (the statement's rows, or nil for an Exec, whose
// caller is still on the stack) gives the tx its stack. It returns the
// operation the statement was: begin, commit, rollback or exec.
func (tr *tracer) txStatus(ctx context.Context, conn *pgx.Conn, st *connState, like *track.Resource, tag pgconn.CommandTag) record.Op {
	s := conn.PgConn().TxStatus()
	in := s == 'T' || s == 'E'
	switch {
	case in && st.tx == nil:
		t := tr.w.t
		o := track.Opening{Into: &st.txBuf, Like: like, Holder: st.res, Attrs: t.ContextAttrs(ctx)}
		st.tx = t.OpenLike(track.KindTx, o, 2)
		return record.OpBegin
	case !in && st.tx != nil:
		if tag.String() == "COMMIT" {
			tr.endTx(st, record.TxCommit)
			return record.OpCommit
		}
		tr.endTx(st, record.TxRollback)
		return record.OpRollback
	}
	return record.OpExec
}

// endTx ends st's tx with outcome o.
func (tr *tracer) endTx(st *connState, o record.TxOutcome) {
	if tr.w.rec.Enabled() {
		tr.w.rec.TxEnded(o, st.tx.Elapsed())
	}
	tr.w.t.Close(st.tx)
	st.tx = nil
}

// TraceBatchStart opens the batch's results, tracked like rows until
// BatchResults.Close.
func (tr *tracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if tr.b != nil {
		ctx = tr.b.TraceBatchStart(ctx, conn, data)
	}
	st := stateOf(conn)
	q := "batch"
	if b := data.Batch; b != nil && len(b.QueuedQueries) > 0 && b.QueuedQueries[0] != nil {
		q = b.QueuedQueries[0].SQL
	}
	tr.openRows(ctx, st, q)
	return ctx
}

// TraceBatchQuery notes each statement of the batch on the checkout and
// the tx.
func (tr *tracer) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	if st := lookup(conn); st != nil {
		st.res.Note(data.SQL)
		st.tx.Note(data.SQL)
	}
	if tr.b != nil {
		tr.b.TraceBatchQuery(ctx, conn, data)
	}
}

// TraceBatchEnd ends the batch's results, and opens or ends the tx the
// batch changed.
func (tr *tracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	if st := lookup(conn); st != nil && st.rows != nil {
		rows := st.rows
		tr.txStatus(ctx, conn, st, rows, pgconn.CommandTag{})
		tr.w.t.Close(rows)
		st.rows = nil
	}
	if tr.b != nil {
		tr.b.TraceBatchEnd(ctx, conn, data)
	}
}

// TraceCopyFromStart starts timing a CopyFrom.
func (tr *tracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	if tr.cf != nil {
		ctx = tr.cf.TraceCopyFromStart(ctx, conn, data)
	}
	st := stateOf(conn)
	st.start = 0
	if tr.w.rec.Enabled() {
		st.start = clock.Now()
	}
	return ctx
}

// TraceCopyFromEnd notes the CopyFrom on the checkout and the tx.
func (tr *tracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	if st := lookup(conn); st != nil {
		var d time.Duration
		slot := -1
		if st.start != 0 {
			d = clock.Since(st.start)
			if st.res != nil {
				slot = int(record.OpExec)
				tr.w.rec.Failed(record.OpExec, data.Err)
			} else {
				tr.w.rec.Done(record.OpExec, d, data.Err)
			}
		}
		st.res.NoteTimed("COPY", slot, d)
		st.tx.Note("COPY")
	}
	if tr.cf != nil {
		tr.cf.TraceCopyFromEnd(ctx, conn, data)
	}
}

// TracePrepareStart and TracePrepareEnd only call the user's tracer:
// pgx keeps prepared statements per conn, for the conn's life.
func (tr *tracer) TracePrepareStart(ctx context.Context, conn *pgx.Conn, data pgx.TracePrepareStartData) context.Context {
	if tr.p != nil {
		ctx = tr.p.TracePrepareStart(ctx, conn, data)
	}
	return ctx
}

func (tr *tracer) TracePrepareEnd(ctx context.Context, conn *pgx.Conn, data pgx.TracePrepareEndData) {
	if tr.p != nil {
		tr.p.TracePrepareEnd(ctx, conn, data)
	}
}

// TraceConnectStart and TraceConnectEnd only call the user's tracer: a
// conn's state is made at its first traced use.
func (tr *tracer) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	if tr.cn != nil {
		ctx = tr.cn.TraceConnectStart(ctx, data)
	}
	return ctx
}

func (tr *tracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	if tr.cn != nil {
		tr.cn.TraceConnectEnd(ctx, data)
	}
}
