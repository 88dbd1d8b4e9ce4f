package poolstats_test

import (
	"database/sql"
	"testing"

	"github.com/sqlwatch/sqlwatch/internal/poolstats"
)

func TestSetGetDelete(t *testing.T) {
	k := new(int)
	if poolstats.Get(k) != nil {
		t.Fatal("Get of an unknown key: got a function; want nil")
	}
	poolstats.Set(k, func() sql.DBStats { return sql.DBStats{OpenConnections: 3} })
	poolstats.Set(k, nil) // ignored
	poolstats.Set(nil, func() sql.DBStats { return sql.DBStats{} })
	f := poolstats.Get(k)
	if f == nil || f().OpenConnections != 3 {
		t.Fatal("Get after Set: not the function set")
	}
	poolstats.Delete(k)
	if poolstats.Get(k) != nil {
		t.Fatal("Get after Delete: got a function; want nil")
	}
}
