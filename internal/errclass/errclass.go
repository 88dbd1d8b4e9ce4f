// Package errclass sorts the errors drivers return into classes: the
// class label of sqlwatch_errors_total, and what the misuse detectors
// act on (lock conflicts, dead connections).
package errclass

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"syscall"
)

// Class is an error class: the class label of sqlwatch_errors_total, and
// what the misuse detectors act on.
type Class uint8

// The error classes.
const (
	ClassOther         Class = iota
	ClassDeadlock            // the server chose this statement as a deadlock victim
	ClassLockTimeout         // a lock wait timed out (or NOWAIT found it taken)
	ClassBusy                // SQLite: database is locked / busy
	ClassSerialization       // a serializable transaction must be retried
	ClassBadConn             // the connection is dead or was closed under the statement
	ClassCanceled            // the context was canceled, or the server canceled the statement
	ClassTimeout             // a deadline or timeout expired
	ClassConstraint          // a constraint (unique, foreign key, not null, check) was violated
	numClasses
)

// NumClasses is the number of classes, for arrays indexed by Class.
const NumClasses = int(numClasses)

var classNames = [numClasses]string{"other", "deadlock", "lock_timeout", "busy", "serialization", "bad_conn", "canceled", "timeout", "constraint"}

// String returns the class label value.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "other"
}

// IsLock reports whether c means another transaction holds a lock:
// deadlock, lock_timeout or busy.
func (c Class) IsLock() bool { return c == ClassDeadlock || c == ClassLockTimeout || c == ClassBusy }

// Classify sorts an error into a Class. It reads, anywhere in the error's
// chain: go-sql-driver/mysql's error numbers (*mysql.MySQLError.Number),
// SQLSTATE codes (lib/pq's *pq.Error and pgx's *pgconn.PgError, through
// their SQLState method), modernc.org/sqlite's result codes (its Code
// method), driver.ErrBadConn, context errors and network errors. It does
// not import any driver.
func Classify(err error) Class {
	if err == nil {
		return ClassOther
	}
	c := ClassOther
	walk(err, func(e error) bool {
		if k, ok := classifyOne(e); ok {
			c = k
			return true
		}
		return false
	})
	if c != ClassOther {
		return c
	}
	switch {
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ClassBadConn
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	// Errors known only by their text: go-sql-driver/mysql's
	// ErrInvalidConn, pgx's closed conn.
	switch msg := err.Error(); {
	case strings.HasSuffix(msg, "invalid connection"), strings.Contains(msg, "conn closed"),
		strings.Contains(msg, "bad connection"), strings.Contains(msg, "connection is already closed"):
		return ClassBadConn
	}
	return ClassOther
}

// walk calls f on err and every error it wraps, depth first, until f
// returns true.
func walk(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, f) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return false
		}
	}
	return false
}

func classifyOne(e error) (Class, bool) {
	if s, ok := e.(interface{ SQLState() string }); ok {
		if c, ok := fromSQLState(s.SQLState(), e.Error()); ok {
			return c, true
		}
	}
	if n, ok := mysqlNumber(e); ok {
		return fromMySQL(n)
	}
	if s, ok := e.(interface{ Code() int }); ok && isSQLiteError(e) {
		return fromSQLite(s.Code())
	}
	return ClassOther, false
}

// fromSQLState maps PostgreSQL's SQLSTATE codes.
func fromSQLState(code, msg string) (Class, bool) {
	switch {
	case code == "40P01":
		return ClassDeadlock, true
	case code == "55P03":
		return ClassLockTimeout, true
	case code == "40001":
		return ClassSerialization, true
	case code == "57014": // query_canceled: by a statement timeout or a cancel request
		if strings.Contains(msg, "timeout") {
			return ClassTimeout, true
		}
		return ClassCanceled, true
	case code == "25P03": // idle_in_transaction_session_timeout
		return ClassBadConn, true
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P0"):
		// connection_exception; operator intervention that ends the
		// session: admin_shutdown, crash_shutdown, cannot_connect_now,
		// database_dropped, idle_session_timeout.
		return ClassBadConn, true
	case strings.HasPrefix(code, "23"):
		return ClassConstraint, true
	}
	return ClassOther, false
}

// mysqlNumber reads the Number field of a *mysql.MySQLError by
// reflection, so that sqlwatch need not import the driver.
func mysqlNumber(e error) (uint16, bool) {
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0, false
	}
	v = v.Elem()
	t := v.Type()
	if t.Kind() != reflect.Struct || t.Name() != "MySQLError" || !strings.HasSuffix(t.PkgPath(), "go-sql-driver/mysql") {
		return 0, false
	}
	f := v.FieldByName("Number")
	if !f.IsValid() || f.Kind() != reflect.Uint16 {
		return 0, false
	}
	return uint16(f.Uint()), true
}

// fromMySQL maps MariaDB/MySQL error numbers.
func fromMySQL(n uint16) (Class, bool) {
	switch n {
	case 1213: // ER_LOCK_DEADLOCK
		return ClassDeadlock, true
	case 1205, 3572: // ER_LOCK_WAIT_TIMEOUT, ER_LOCK_NOWAIT
		return ClassLockTimeout, true
	case 1062, 1451, 1452, 1048, 1364, 3819, 4025: // duplicate key, foreign keys, not null, check
		return ClassConstraint, true
	case 1927, 2006, 2013, 1053: // connection killed, server gone away, lost, shutdown
		return ClassBadConn, true
	case 3024, 1969: // max_execution_time, max_statement_time
		return ClassTimeout, true
	case 1317: // query interrupted
		return ClassCanceled, true
	}
	return ClassOther, false
}

func isSQLiteError(e error) bool {
	t := reflect.TypeOf(e)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.Contains(t.PkgPath(), "sqlite")
}

// fromSQLite maps SQLite result codes (extended codes keep the primary
// code in their low byte).
func fromSQLite(code int) (Class, bool) {
	switch code & 0xff {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return ClassBusy, true
	case 19: // SQLITE_CONSTRAINT
		return ClassConstraint, true
	case 9: // SQLITE_INTERRUPT
		return ClassCanceled, true
	}
	return ClassOther, false
}
