package metrics_test

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

	"github.com/sqlwatch/sqlwatch/metrics"
)

func TestClassify(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		if got := metrics.Classify(err).String(); got != want {
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
