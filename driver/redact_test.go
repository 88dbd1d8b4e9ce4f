package driver_test

import (
	"context"
	"testing"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
)

// TestRedactedSQLDialect: WithRedactedSQL reads the SQL text in the
// dialect of the wrapped driver, on every database: PostgreSQL's quoted
// identifiers stay (gorm quotes every one), a MySQL literal with an
// escaped quote does not take the rest of the statement with it, and a
// literal ending in a backslash (a character in PostgreSQL and SQLite)
// neither. Read without the dialect, as before, the first came out as
// "UPDATE ? SET ? = ? WHERE ? = ?" and the others as "UPDATE ... = ?".
func TestRedactedSQLDialect(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		db, ch := open(t, b, driver.WithRedactedSQL())
		ctx := context.Background()
		tbl := "sqlwatch_redact_" + b.name
		db.ExecContext(ctx, "DROP TABLE IF EXISTS "+tbl)
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+tbl+" (id INTEGER PRIMARY KEY, name VARCHAR(40))"); err != nil {
			t.Fatal(err)
		}
		defer db.ExecContext(ctx, "DROP TABLE "+tbl)
		var q, want string
		switch b.name {
		case "mysql":
			q = "UPDATE `" + tbl + "` SET name = 'it\\'s secret' WHERE id = 4242"
			want = "UPDATE `" + tbl + "` SET name = ? WHERE id = ?"
		case "postgres", "pgx":
			q = `UPDATE "` + tbl + `" SET "name" = E'it\'s secret' WHERE "id" = 4242 AND "name" <> 'C:\secret\'`
			want = `UPDATE "` + tbl + `" SET "name" = ? WHERE "id" = ? AND "name" <> ?`
		case "sqlite":
			q = "UPDATE " + tbl + " SET name = 'C:\\secret\\' WHERE id = 4242"
			want = "UPDATE " + tbl + " SET name = ? WHERE id = ?"
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		r := ch.wait(t, leak.KindTx, false)
		if r.LastQuery != want {
			t.Errorf("last query\n got %q\nwant %q", r.LastQuery, want)
		}
	})
}
