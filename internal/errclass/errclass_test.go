package errclass_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"

	"github.com/sqlwatch/sqlwatch/internal/errclass"
)

func TestClassify(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		if got := errclass.Classify(err).String(); got != want {
			t.Errorf("Classify(%v) = %s; want %s", err, got, want)
		}
	}
	f(&mysql.MySQLError{Number: 1213}, "deadlock")
	f(&mysql.MySQLError{Number: 1205}, "lock_timeout")
	f(&mysql.MySQLError{Number: 1062}, "constraint")
	f(&mysql.MySQLError{Number: 1064}, "other")
	f(fmt.Errorf("saving: %w", &mysql.MySQLError{Number: 1213}), "deadlock")
	f(mysql.ErrInvalidConn, "bad_conn")
	f(&pq.Error{Code: "40P01"}, "deadlock")
	f(&pq.Error{Code: "55P03"}, "lock_timeout")
	f(&pq.Error{Code: "40001"}, "serialization")
	f(&pq.Error{Code: "23505"}, "constraint")
	f(&pq.Error{Code: "57P01"}, "bad_conn")
	f(&pgconn.PgError{Code: "40P01"}, "deadlock")
	f(&pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}, "timeout")
	f(&pgconn.PgError{Code: "57014", Message: "canceling statement due to user request"}, "canceled")
	f(errors.Join(errors.New("x"), &pgconn.PgError{Code: "55P03"}), "lock_timeout")
	f(driver.ErrBadConn, "bad_conn")
	f(io.ErrUnexpectedEOF, "bad_conn")
	f(context.Canceled, "canceled")
	f(context.DeadlineExceeded, "timeout")
	f(errors.New("something"), "other")
	f(nil, "other")
}

// TestClassifySQLState: every SQLSTATE that ends the session is bad_conn,
// from lib/pq's and pgx's error types alike, bare or wrapped: class 08
// (connection_exception), 57P01-57P05 (admin_shutdown, crash_shutdown,
// cannot_connect_now, database_dropped, idle_session_timeout) and 25P03
// (idle_in_transaction_session_timeout). Neighbouring codes are not.
func TestClassifySQLState(t *testing.T) {
	f := func(code, want string) {
		t.Helper()
		for _, err := range []error{
			//lint:ignore SA1019 the error type lib/pq's released versions return
			&pq.Error{Code: pq.ErrorCode(code)},
			&pgconn.PgError{Code: code},
			fmt.Errorf("query: %w", &pgconn.PgError{Code: code}),
		} {
			if got := errclass.Classify(err).String(); got != want {
				t.Errorf("Classify(%T %s) = %s; want %s", err, code, got, want)
			}
		}
	}
	for _, code := range []string{"08000", "08001", "08003", "08004", "08006", "08007", "08P01",
		"57P01", "57P02", "57P03", "57P04", "57P05", "25P03"} {
		f(code, "bad_conn")
	}
	f("57000", "other") // operator_intervention: the session goes on
	f("53300", "other") // too_many_connections
	f("25P02", "other") // in_failed_sql_transaction
	f("57014", "canceled")
}
