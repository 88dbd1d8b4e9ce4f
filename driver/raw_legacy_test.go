package driver_test

import (
	"context"
	sqldriver "database/sql/driver"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sqlwatch/sqlwatch/driver"
)

var legacyDB atomic.Int32

// TestRawLegacyExecerQueryer runs go-sql-driver's multi-result calls, which
// exist only on its legacy driver.Execer and driver.Queryer, through the
// conn Unwrap reaches from sql.Conn.Raw on MariaDB: the multi-statement
// Exec's mysql.Result gives every statement's rows affected and insert id.
func TestRawLegacyExecerQueryer(t *testing.T) {
	b := backends[1]
	dsn := b.dsn(t)
	if strings.Contains(dsn, "?") {
		dsn += "&multiStatements=true"
	} else {
		dsn += "?multiStatements=true"
	}
	name := fmt.Sprintf("sqlwatch-legacy-%d", legacyDB.Add(1))
	if err := driver.RegisterByName(name, "mysql", driver.WithLogger(discard)); err != nil {
		t.Fatal(err)
	}
	db := openAndPing(t, b, name, dsn)
	ctx := context.Background()
	db.ExecContext(ctx, "DROP TABLE IF EXISTS sqlwatch_legacy")
	if _, err := db.ExecContext(ctx, "CREATE TABLE sqlwatch_legacy (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	defer db.ExecContext(ctx, "DROP TABLE sqlwatch_legacy")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		inner := driver.Unwrap(dc)
		if inner == dc {
			t.Fatalf("Unwrap(%T) returned its argument; want the driver's conn", dc)
		}
		//lint:ignore SA1019 the driver's multi-result API is on the legacy interface
		ex, ok := inner.(sqldriver.Execer)
		if !ok {
			t.Fatalf("Unwrap gave %T, not a driver.Execer", inner)
		}
		res, err := ex.Exec("INSERT INTO sqlwatch_legacy (v) VALUES ('a'), ('b'); INSERT INTO sqlwatch_legacy (v) VALUES ('c'), ('d'), ('e');", nil)
		if err != nil {
			t.Fatalf("multi-statement Exec: %v", err)
		}
		mres, ok := res.(mysql.Result)
		if !ok {
			t.Fatalf("Exec gave %T; want a mysql.Result", res)
		}
		if got, want := mres.AllRowsAffected(), []int64{2, 3}; !reflect.DeepEqual(got, want) {
			t.Errorf("AllRowsAffected: got %v; want %v", got, want)
		}
		if got, want := mres.AllLastInsertIds(), []int64{1, 3}; !reflect.DeepEqual(got, want) {
			t.Errorf("AllLastInsertIds: got %v; want %v", got, want)
		}

		//lint:ignore SA1019 as above
		qr, ok := inner.(sqldriver.Queryer)
		if !ok {
			t.Fatalf("Unwrap gave %T, not a driver.Queryer", inner)
		}
		rows, err := qr.Query("SELECT count(*) FROM sqlwatch_legacy; SELECT max(id) FROM sqlwatch_legacy", nil)
		if err != nil {
			t.Fatalf("multi-statement Query: %v", err)
		}
		defer rows.Close()
		var got []int64
		dest := make([]sqldriver.Value, 1)
		for {
			if err := rows.Next(dest); err == nil {
				got = append(got, dest[0].(int64))
				continue
			}
			rs, ok := rows.(sqldriver.RowsNextResultSet)
			if !ok || !rs.HasNextResultSet() {
				break
			}
			if err := rs.NextResultSet(); err != nil {
				t.Fatalf("NextResultSet: %v", err)
			}
		}
		if want := []int64{5, 5}; !reflect.DeepEqual(got, want) {
			t.Errorf("two result sets: got %v; want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The pool goes on through sqlwatch after the raw calls.
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlwatch_legacy").Scan(&n); err != nil || n != 5 {
		t.Fatalf("count after Raw: got %d, %v; want 5", n, err)
	}
}
