package driver

import (
	"database/sql/driver"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"modernc.org/sqlite"

	"github.com/sqlwatch/sqlwatch/internal/fakedb"
)

func TestGrammarOf(t *testing.T) {
	f := func(d driver.Driver, want dsnGrammar) {
		t.Helper()
		if got := grammarOf(d); got != want {
			t.Errorf("%T: got %d; want %d", d, got, want)
		}
	}
	f(&mysql.MySQLDriver{}, grammarMySQL)
	f(mysql.MySQLDriver{}, grammarMySQL)
	f(&pq.Driver{}, grammarPQ)
	f(stdlib.GetDefaultDriver(), grammarPGX)
	f(&sqlite.Driver{}, grammarSQLite)
	f(&wrappedDriver{inner: &sqlite.Driver{}}, grammarSQLite)
	f(fakedb.New(fakedb.Full).Driver(), grammarUnknown)
	f(nil, grammarUnknown)
}

// TestNameFromDSN: each driver's usual DSNs give host:port/db or the
// file's base name; the DSNs that leaked a password give no part of it.
func TestNameFromDSN(t *testing.T) {
	f := func(g dsnGrammar, dsn, want string) {
		t.Helper()
		if got := nameFromDSN(g, dsn, "drv"); got != want {
			t.Errorf("grammar %d, %q: got %q; want %q", g, dsn, got, want)
		}
	}
	// go-sql-driver/mysql
	f(grammarMySQL, "app:s3cret@tcp(db.internal:3306)/orders?parseTime=true", "db.internal:3306/orders")
	f(grammarMySQL, "app:s3c@r/et@tcp(db.internal)/orders", "db.internal:3306/orders")
	f(grammarMySQL, "app:pw@unix(/run/mysqld/mysqld.sock)/orders", "/run/mysqld/mysqld.sock/orders")
	f(grammarMySQL, "app:pw@/orders", "127.0.0.1:3306/orders")
	f(grammarMySQL, "/", "127.0.0.1:3306")
	f(grammarMySQL, "app:pw@tcp([::1]:3307)/my%2Fdb", "[::1]:3307/my/db")
	f(grammarMySQL, "app:pw@tcp(h", "drv")
	f(grammarMySQL, "app:pw@foo/orders", "drv") // unknown network without an address
	f(grammarMySQL, "Server=h;Database=d;User Id=u;Password=p@ss1;", "drv")
	// lib/pq and pgx: URLs and keyword/value strings
	for _, g := range []dsnGrammar{grammarPQ, grammarPGX} {
		f(g, "postgres://app:s3cret@db.internal:5432/orders?sslmode=disable", "db.internal:5432/orders")
		f(g, "postgresql://app:s3cret@db.internal/orders", "db.internal/orders")
		f(g, "postgres://app:s3%2Fcret@[::1]:5433/orders", "[::1]:5433/orders")
		f(g, "host=db.internal port=5432 user=app password=s3cret dbname=orders", "db.internal:5432/orders")
		f(g, "host=h user=myadmin@myserver password=AzSecret3 dbname=postgres", "h/postgres")
		f(g, "user=app host=/var/run/postgresql password=SockSecret4 dbname=orders", "/var/run/postgresql/orders")
		f(g, "host='db one' password='it''s' dbname=orders", "drv") // '' is no escape: the rest does not parse
		f(g, `host='db one' password='a b\'c' dbname=orders`, "db one/orders")
		f(g, `password=a\ b host=h`, "h")
		f(g, "dbname=orders", "orders")
		f(g, "host=h1,h2 port=5432,5433 dbname=orders", "h1:5432,h2:5433/orders")
		f(g, "host=h1,h2 port=5433 dbname=orders", "h1:5433,h2:5433/orders")
		f(g, "host=h port=x5432 dbname=orders", "drv")
		f(g, "password=secret5", "drv")
		f(g, "postgres://user:se/cret@host", "drv")
		f(g, "postgres://user:12/cret@host/db", "drv")
		f(g, "postgres://h/db?user=a@b", "drv") // a raw '@' after the user info: no name
		f(g, "postgres://h/db?password=x&sslmode=disable", "h/db")
		f(g, "Server=h;Database=d;User Id=u;Password=p@ss2;", "drv")
		f(g, "", "drv")
	}
	f(grammarPGX, "postgres://app:pw@h1:5432,h2:5433/orders", "h1:5432,h2:5433/orders")
	f(grammarPGX, "postgres://app:pw@h/orders?host=other&dbname=x", "other/x")
	f(grammarPQ, "postgres://app:pw@h/orders?dbname=x", "h/x") // lib/pq sorts: dbname='x' after dbname='orders'
	// SQLite
	f(grammarSQLite, "file:/var/lib/app/orders.db?_pragma=busy_timeout(5000)", "orders.db")
	f(grammarSQLite, "file:x.db?_auth_pass=S@secret6", "x.db")
	f(grammarSQLite, "file:///var/lib/app/my%20orders.db#frag", "my orders.db")
	f(grammarSQLite, "/var/lib/app/orders.db", "orders.db")
	f(grammarSQLite, `C:\data\orders.db?_auth_pass=p/w`, "orders.db")
	f(grammarSQLite, "orders.db?_auth_user=u&_auth_pass=a/b", "orders.db")
	f(grammarSQLite, ":memory:", "drv:memory:")
	f(grammarSQLite, "file::memory:?cache=shared", "drv:memory:")
	f(grammarSQLite, "file:shared?mode=memory&cache=shared", "drv:memory:")
	f(grammarSQLite, "", "drv")
	f(grammarSQLite, "Server=h;Database=d;User Id=u;Password=p@ss3;", "drv")
	// Unknown drivers
	f(grammarUnknown, "root:pw@tcp(127.0.0.1:3306)/test", "drv")
	f(grammarUnknown, "postgres://user:se/cret@host", "drv")
	if got := nameFromDSN(grammarUnknown, "x", ""); got != "db" {
		t.Errorf("empty fallback: got %q; want db", got)
	}
	// Control characters do not reach a log line or a label.
	f(grammarPGX, "host='a\nb' dbname=c", "a?b/c")
}

// dsnToken is the password planted by FuzzDBName. The other fields of
// the DSNs it builds are lower case, so none can spell it.
const dsnToken = "QZ7PWX"

// safeField keeps the lower-case letters, digits, '.', '-' and '_' of s,
// at most 20 of them.
func safeField(s, def string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
		if b.Len() == 20 {
			break
		}
	}
	if b.Len() == 0 {
		return def
	}
	return b.String()
}

// without drops from s every byte of cut.
func without(s, cut string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(cut, r) {
			return -1
		}
		return r
	}, s)
}

// plantedDSN builds a DSN of one of the forms users write, with pass as
// its password, and the grammars it is read by.
func plantedDSN(form uint8, user, host, port, db, pass string) (string, []dsnGrammar) {
	pg := []dsnGrammar{grammarPQ, grammarPGX}
	kvQuote := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	switch form % 16 {
	case 0: // go-sql-driver/mysql: any byte in the password
		return user + ":" + pass + "@tcp(" + host + ":" + port + ")/" + db + "?parseTime=true", []dsnGrammar{grammarMySQL}
	case 1:
		return user + ":" + pass + "@unix(/run/" + host + ".sock)/" + db, []dsnGrammar{grammarMySQL}
	case 2:
		return user + ":" + pass + "@/" + db, []dsnGrammar{grammarMySQL}
	case 3: // a URL, escaped as net/url does
		u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pass), Host: host + ":" + port, Path: "/" + db, RawQuery: "sslmode=disable"}
		return u.String(), pg
	case 4: // a URL written by hand, the password not escaped
		return "postgres://" + user + ":" + pass + "@" + host + ":" + port + "/" + db, pg
	case 5: // several hosts (pgx; lib/pq rejects it)
		return "postgresql://" + user + ":" + url.QueryEscape(pass) + "@" + host + ":" + port + "," + host + "2/" + db, pg
	case 6: // the password in the query, escaped
		return "postgres://" + host + "/" + db + "?user=" + user + "&password=" + url.QueryEscape(pass), pg
	case 7: // the password in the query, not escaped
		return "postgres://" + host + "/" + db + "?password=" + without(pass, "&#") + "&sslmode=disable", pg
	case 8: // keyword/value, quoted
		return "host=" + host + " port=" + port + " user=" + user + " password=" + kvQuote(pass) + " dbname=" + db, pg
	case 9: // keyword/value, the Azure user name, quoted password first
		return "password=" + kvQuote(pass) + " host=" + host + " user=" + user + "@" + host + " dbname=" + db, pg
	case 10: // keyword/value, bare, backslash escapes
		esc := strings.NewReplacer(`\`, `\\`, " ", `\ `, "\t", "\\\t", "\n", "\\\n", "\r", "\\\r", "\v", "\\\v", "\f", "\\\f", "'", `\'`).Replace(pass)
		return "user=" + user + " password=" + esc + " host=" + host + " dbname=" + db, pg
	case 11: // keyword/value, bare, written by hand: no white space
		p := strings.Map(func(r rune) rune {
			if r <= ' ' || r == 0x85 || r == 0xA0 || r >= 0x1680 && (r <= 0x200A || r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F || r == 0x3000) {
				return -1
			}
			return r
		}, pass)
		return "host=" + host + " user=" + user + " password=" + p + " dbname=" + db, pg
	case 12: // a SQLite file: URI, the password of a driver's own parameter
		return "file:/var/lib/" + host + "/" + db + ".db?_auth_user=" + user + "&_auth_pass=" + pass, []dsnGrammar{grammarSQLite}
	case 13:
		return "file:" + db + ".db?_auth_pass=" + url.QueryEscape(pass) + "&mode=rwc", []dsnGrammar{grammarSQLite}
	case 14: // a SQLite file name with parameters
		return "/data/" + db + ".db?_auth_pass=" + pass, []dsnGrammar{grammarSQLite}
	default: // ODBC style: read by no grammar of ours
		return "Server=" + host + ";Database=" + db + ";User Id=" + user + ";Password=" + without(pass, " \t\n\v\f\r\u0085\u00a0/") + ";",
			[]dsnGrammar{grammarMySQL, grammarPQ, grammarPGX, grammarSQLite}
	}
}

// FuzzDBName plants a password in DSNs of every form the wrapped drivers
// accept, and of the forms users get wrong, and requires that no pool
// name holds it, whatever bytes surround it. Where the driver's own parser
// accepts the DSN, the host, port and database read must be the driver's.
func FuzzDBName(f *testing.F) {
	f.Add(uint8(0), "app", "db.internal", uint16(3306), "orders", "s3c@r/et", "")
	f.Add(uint8(4), "user", "host", uint16(5432), "db", "se/", "")
	f.Add(uint8(4), "user", "host", uint16(5432), "db", "12/", "?host=x&user=@")
	f.Add(uint8(9), "myadmin", "myserver", uint16(5432), "postgres", "Az", "3")
	f.Add(uint8(12), "u", "x", uint16(0), "x", "S@", "6")
	f.Add(uint8(15), "u", "h", uint16(1), "d", "p@", "..")
	f.Add(uint8(7), "u", "h", uint16(1), "d", "a", "@b")
	f.Fuzz(func(t *testing.T, form uint8, user, host string, port uint16, db, pre, post string) {
		user, host, db = safeField(user, "u"), safeField(host, "h"), safeField(db, "d")
		pass := pre + dsnToken + post
		dsn, grammars := plantedDSN(form, user, host, strconv.Itoa(int(port)), db, pass)
		for _, g := range append(grammars, grammarUnknown) {
			if name := nameFromDSN(g, dsn, "drv"); strings.Contains(name, dsnToken) {
				t.Errorf("grammar %d, %q: the name %q holds the password", g, dsn, name)
			}
		}
		checkAgainstDrivers(t, dsn)
		checkAgainstDrivers(t, pre+post) // any text at all
	})
}

// checkAgainstDrivers compares what the grammars read from dsn with what
// the drivers' own parsers read, where both accept it.
func checkAgainstDrivers(t *testing.T, dsn string) {
	t.Helper()
	if cfg, err := mysql.ParseDSN(dsn); err == nil {
		if got, ok := parseMySQLDSN(dsn); ok && (got.hosts[0] != cfg.Addr || got.db != cfg.DBName) {
			t.Errorf("mysql %q: read %q %q; the driver reads %q %q", dsn, got.hosts[0], got.db, cfg.Addr, cfg.DBName)
		}
	}
	pgCheck := func(driverName string, got dsnTarget, host string, port uint16, db string) {
		t.Helper()
		if len(got.hosts) > 0 && got.hosts[0] != "" && got.hosts[0] != host {
			t.Errorf("%s %q: read host %q; the driver reads %q", driverName, dsn, got.hosts[0], host)
		}
		if len(got.ports) > 0 && got.ports[0] != "" {
			if p, _ := strconv.Atoi(got.ports[0]); p != int(port) {
				t.Errorf("%s %q: read port %q; the driver reads %d", driverName, dsn, got.ports[0], port)
			}
		}
		if got.db != "" && got.db != db {
			t.Errorf("%s %q: read database %q; the driver reads %q", driverName, dsn, got.db, db)
		}
	}
	if got, ok := parsePGXDSN(dsn); ok {
		if cfg, err := pgconn.ParseConfig(dsn); err == nil {
			pgCheck("pgx", got, cfg.Host, cfg.Port, cfg.Database)
		}
	}
	if got, ok := parsePQDSN(dsn); ok {
		if cfg, err := pq.NewConfig(dsn); err == nil {
			pgCheck("lib/pq", got, cfg.Host, cfg.Port, cfg.Database)
		}
	}
}
