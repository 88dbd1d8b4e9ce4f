// Package integration runs sqlwatch under the libraries applications wrap
// it in or around: sqlx, gorm, bun, ent, squirrel, XSAM/otelsql, pgx's
// GetConnector, and sqlc-style generated code. It is its own module, so
// that these libraries never enter the library's go.mod. The snippets of
// docs/integrations.md are these tests.
//
// Run it with the databases of .ci/run:
//
//	cd integration && SQLWATCH_MYSQL_DSN=... SQLWATCH_POSTGRES_DSN=... SQLWATCH_REQUIRE_DB=1 go test -race -count=1 ./...
package integration
