package driver

import (
	"context"
	"database/sql/driver"
	"errors"
)

// Fallbacks that do exactly what database/sql does for a driver without
// the context-aware interface (database/sql/ctxutil.go).

// execerOf returns ci's ExecerContext, or its legacy Execer adapted, or
// nil.
func execerOf(ci driver.Conn) driver.ExecerContext {
	if ec, ok := ci.(driver.ExecerContext); ok {
		return ec
	}
	//lint:ignore SA1019 a driver may offer only the legacy Execer; database/sql still uses it
	if e, ok := ci.(driver.Execer); ok {
		return legacyExecer{e}
	}
	return nil
}

// queryerOf returns ci's QueryerContext, or its legacy Queryer adapted,
// or nil.
func queryerOf(ci driver.Conn) driver.QueryerContext {
	if qc, ok := ci.(driver.QueryerContext); ok {
		return qc
	}
	//lint:ignore SA1019 a driver may offer only the legacy Queryer; database/sql still uses it
	if q, ok := ci.(driver.Queryer); ok {
		return legacyQueryer{q}
	}
	return nil
}

//lint:ignore SA1019 the fallback for a driver without ExecerContext, as database/sql has (ctxutil.go)
type legacyExecer struct{ e driver.Execer }

func (l legacyExecer) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.e.Exec(query, dargs)
}

//lint:ignore SA1019 the fallback for a driver without QueryerContext, as database/sql has (ctxutil.go)
type legacyQueryer struct{ q driver.Queryer }

func (l legacyQueryer) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	dargs, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.q.Query(query, dargs)
}

type legacyPreparer struct{ c driver.Conn }

func (l legacyPreparer) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	si, err := l.c.Prepare(query)
	if err == nil {
		if cerr := ctx.Err(); cerr != nil {
			si.Close()
			return nil, cerr
		}
	}
	return si, err
}

type legacyBeginner struct{ c driver.Conn }

// Errors with the same text as database/sql's, for a driver without
// ConnBeginTx.
var (
	errIsolation = errors.New("sql: driver does not support non-default isolation level")
	errReadOnly  = errors.New("sql: driver does not support read-only transactions")
)

func (l legacyBeginner) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.Isolation != 0 {
		return nil, errIsolation
	}
	if opts.ReadOnly {
		return nil, errReadOnly
	}
	//lint:ignore SA1019 the driver has nothing else
	ti, err := l.c.Begin()
	if err == nil {
		if cerr := ctx.Err(); cerr != nil {
			ti.Rollback()
			return nil, cerr
		}
	}
	return ti, err
}

func namedValueToValue(named []driver.NamedValue) ([]driver.Value, error) {
	dargs := make([]driver.Value, len(named))
	for n, param := range named {
		if len(param.Name) > 0 {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		dargs[n] = param.Value
	}
	return dargs, nil
}

func valueToNamedValue(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv
}
