package driver

import (
	"database/sql/driver"
	"net"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// dsnGrammar is the connection-string grammar of a wrapped driver, known
// from the driver's type. A pool's default name is read from its DSN by
// that grammar only; with grammarUnknown it is the driver's name.
type dsnGrammar uint8

const (
	grammarUnknown dsnGrammar = iota
	grammarMySQL              // github.com/go-sql-driver/mysql
	grammarPQ                 // github.com/lib/pq
	grammarPGX                // github.com/jackc/pgx's stdlib
	grammarSQLite             // modernc.org/sqlite and the SQLite drivers with its DSN
)

// grammarOf returns the DSN grammar of d, by the package of its type;
// sqlwatch's own wrapper is looked through.
func grammarOf(d driver.Driver) dsnGrammar {
	for {
		w, ok := d.(*wrappedDriver)
		if !ok {
			break
		}
		d = w.inner
	}
	t := reflect.TypeOf(d)
	if t == nil {
		return grammarUnknown
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.PkgPath() {
	case "github.com/go-sql-driver/mysql":
		return grammarMySQL
	case "github.com/lib/pq":
		return grammarPQ
	case "github.com/jackc/pgx/v5/stdlib", "github.com/jackc/pgx/v4/stdlib":
		return grammarPGX
	case "modernc.org/sqlite", "github.com/mattn/go-sqlite3", "github.com/ncruces/go-sqlite3/driver":
		return grammarSQLite
	}
	return grammarUnknown
}

// dialect returns the SQL dialect of the drivers of grammar g, as
// leak.Config.SQLDialect names it ("" when unknown).
func (g dsnGrammar) dialect() string {
	switch g {
	case grammarMySQL:
		return "mysql"
	case grammarPQ, grammarPGX:
		return "postgres"
	case grammarSQLite:
		return "sqlite"
	}
	return ""
}

// dsnTarget is what a DSN names, by its driver's grammar: the hosts (or
// socket paths) with their ports, and the database. It never holds a
// user name, a password or a parameter.
type dsnTarget struct {
	hosts, ports []string
	db           string
}

// nameFromDSN derives a pool name from dsn, read by grammar g: host:port/db
// for a server (hosts joined by commas), the file's base name for SQLite.
// Only what the grammar positively parses as a host, port, database or
// file name goes in; a DSN it cannot parse, a driver of unknown grammar
// and a DSN whose structure leaves a doubt about where its password ends
// (a raw '@' after a URL's user info) give fallback, the driver's name.
func nameFromDSN(g dsnGrammar, dsn, fallback string) string {
	if fallback == "" {
		fallback = "db"
	}
	var (
		t  dsnTarget
		ok bool
	)
	switch g {
	case grammarMySQL:
		t, ok = parseMySQLDSN(dsn)
	case grammarPQ:
		t, ok = parsePQDSN(dsn)
	case grammarPGX:
		t, ok = parsePGXDSN(dsn)
	case grammarSQLite:
		return sqliteName(dsn, fallback)
	}
	if !ok {
		return fallback
	}
	if name := printable(t.name()); name != "" {
		return name
	}
	return fallback
}

// name formats t as host:port[,host:port]/db.
func (t *dsnTarget) name() string {
	var b strings.Builder
	for i, h := range t.hosts {
		if i > 0 {
			b.WriteByte(',')
		}
		port := ""
		switch {
		case i < len(t.ports):
			port = t.ports[i]
		case len(t.ports) == 1:
			port = t.ports[0] // one port for every host
		}
		if port != "" && strings.IndexByte(h, ':') >= 0 {
			h = "[" + h + "]"
		}
		b.WriteString(h)
		if port != "" {
			b.WriteString(":" + port)
		}
	}
	if t.db != "" {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(t.db)
	}
	return b.String()
}

// printable replaces control characters and invalid UTF-8 in a name.
func printable(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// parseMySQLDSN reads go-sql-driver/mysql's DSN as its ParseDSN does:
// [user[:password]@][net[(addr)]]/dbname[?params], split at the last '/'
// and the last '@' before it, with its defaults for the address.
func parseMySQLDSN(dsn string) (dsnTarget, bool) {
	i := strings.LastIndexByte(dsn, '/')
	if i < 0 {
		return dsnTarget{}, false
	}
	var netw, addr string
	if i > 0 {
		j := strings.LastIndexByte(dsn[:i], '@') // -1: no user info
		rest := dsn[j+1 : i]
		if k := strings.IndexByte(rest, '('); k >= 0 {
			if dsn[i-1] != ')' {
				return dsnTarget{}, false
			}
			netw, addr = rest[:k], rest[k+1:len(rest)-1]
		} else {
			netw = rest
		}
	}
	db := dsn[i+1:]
	if q := strings.IndexByte(db, '?'); q >= 0 {
		db = db[:q]
	}
	db, err := url.PathUnescape(db)
	if err != nil {
		return dsnTarget{}, false
	}
	if netw == "" {
		netw = "tcp"
	}
	switch {
	case addr == "" && netw == "tcp":
		addr = "127.0.0.1:3306"
	case addr == "" && netw == "unix":
		addr = "/tmp/mysql.sock"
	case addr == "":
		return dsnTarget{}, false // the driver rejects it
	case netw == "tcp":
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "3306")
		}
	}
	return dsnTarget{hosts: []string{addr}, db: db}, true
}

// parsePGXDSN reads a DSN as pgx's pgconn.ParseConfig does: a
// postgres:// or postgresql:// URI by libpq's URI rules (several hosts
// allowed), anything else as libpq's keyword/value string.
func parsePGXDSN(dsn string) (dsnTarget, bool) {
	if strings.IndexByte(dsn, 0) >= 0 {
		return dsnTarget{}, false
	}
	var (
		settings map[string]string
		ok       bool
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		settings, ok = pgxURLSettings(dsn)
	} else {
		settings, ok = pgxKeywordValues(dsn)
	}
	if !ok {
		return dsnTarget{}, false
	}
	return pgTarget(settings["host"], settings["port"], settings["database"])
}

// pgTarget checks and splits libpq's comma-separated host and port lists.
func pgTarget(host, port, db string) (dsnTarget, bool) {
	var t dsnTarget
	if host != "" {
		t.hosts = strings.Split(host, ",")
	}
	if port != "" {
		t.ports = strings.Split(port, ",")
		for _, p := range t.ports {
			if len(p) > 5 || strings.Trim(p, "0123456789") != "" {
				return dsnTarget{}, false // not a port: the driver rejects it
			}
		}
	}
	t.db = db
	return t, true
}

// pgxURLSettings mirrors pgconn's parseURLSettings, keeping the host,
// port and database. A raw '@' after the user info means a password with
// an unescaped '/', '?' or '@' was split elsewhere than its writer meant:
// no name is read from such a DSN.
func pgxURLSettings(dsn string) (map[string]string, bool) {
	p, ok := strings.CutPrefix(dsn, "postgresql://")
	if !ok {
		p, _ = strings.CutPrefix(dsn, "postgres://")
	}
	if i := strings.IndexAny(p, "@/"); i >= 0 && p[i] == '@' {
		p = p[i+1:]
	}
	if strings.IndexByte(p, '@') >= 0 {
		return nil, false
	}
	settings := map[string]string{}
	var hosts, ports strings.Builder
	for {
		if len(p) > 0 && p[0] == '[' {
			end := strings.IndexByte(p, ']')
			if end <= 1 {
				return nil, false
			}
			hosts.WriteString(p[1:end])
			p = p[end+1:]
			if len(p) > 0 && !strings.ContainsRune(":/?,", rune(p[0])) {
				return nil, false
			}
		} else {
			i := strings.IndexAny(p, ":/?,")
			if i < 0 {
				i = len(p)
			}
			hosts.WriteString(p[:i])
			p = p[i:]
		}
		if len(p) > 0 && p[0] == ':' {
			p = p[1:]
			i := strings.IndexAny(p, "/?,")
			if i < 0 {
				i = len(p)
			}
			ports.WriteString(p[:i])
			p = p[i:]
		}
		if len(p) == 0 || p[0] != ',' {
			break
		}
		p = p[1:]
		hosts.WriteByte(',')
		ports.WriteByte(',')
	}
	for key, raw := range map[string]string{"host": hosts.String(), "port": ports.String()} {
		if raw != "" {
			v, ok := libpqURIDecode(raw)
			if !ok {
				return nil, false
			}
			settings[key] = v
		}
	}
	if len(p) > 0 && p[0] == '/' {
		db := p[1:]
		p = ""
		if i := strings.IndexByte(db, '?'); i >= 0 {
			db, p = db[:i], db[i:]
		}
		if db != "" {
			v, ok := libpqURIDecode(db)
			if !ok {
				return nil, false
			}
			settings["database"] = v
		}
	}
	if len(p) > 0 && p[0] == '?' {
		for _, pair := range strings.Split(p[1:], "&") {
			rawKey, rawValue, found := strings.Cut(pair, "=")
			if !found || strings.IndexByte(rawValue, '=') >= 0 {
				return nil, false
			}
			key, ok := libpqURIDecode(rawKey)
			if !ok {
				return nil, false
			}
			value, ok := libpqURIDecode(rawValue)
			if !ok {
				return nil, false
			}
			if key == "dbname" {
				key = "database"
			}
			settings[key] = value
		}
	}
	return settings, true
}

// libpqURIDecode percent-decodes a URI component as libpq does: exactly
// two hex digits after '%', no %00, surrounding spaces dropped, none
// inside.
func libpqURIDecode(raw string) (string, bool) {
	raw = strings.Trim(raw, " ")
	if strings.IndexByte(raw, ' ') >= 0 {
		return "", false
	}
	if strings.IndexByte(raw, '%') < 0 {
		return raw, true
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			b.WriteByte(raw[i])
			continue
		}
		if i+2 >= len(raw) {
			return "", false
		}
		hi, ok1 := unhex(raw[i+1])
		lo, ok2 := unhex(raw[i+2])
		if !ok1 || !ok2 || hi<<4|lo == 0 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// pgxKeywordValues mirrors pgconn's parseKeywordValueSettings: key=value
// pairs separated by ASCII white space, values either single-quoted or
// bare, a backslash taking the next byte literally; dbname and database
// are one key.
func pgxKeywordValues(s string) (map[string]string, bool) {
	const space = " \t\n\r\v\f"
	settings := map[string]string{}
	s = strings.TrimLeft(s, space)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, false
		}
		key := strings.Trim(s[:eq], space)
		if key == "" || strings.ContainsAny(key, space) {
			return nil, false
		}
		s = strings.TrimLeft(s[eq+1:], space)
		var val string
		switch {
		case len(s) == 0:
		case s[0] != '\'':
			end := 0
			for ; end < len(s) && !strings.ContainsRune(space, rune(s[end])); end++ {
				if s[end] == '\\' {
					end++
					if end == len(s) {
						break
					}
				}
			}
			val = unbackslash(s[:end])
			s = strings.TrimLeft(s[end:], space)
		default:
			s = s[1:]
			end := 0
			for ; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
					if end == len(s) {
						return nil, false
					}
				}
			}
			if end == len(s) {
				return nil, false
			}
			val = unbackslash(s[:end])
			s = strings.TrimLeft(s[end+1:], space)
		}
		if key == "dbname" {
			key = "database"
		}
		if key == "user" && val == "" {
			continue
		}
		settings[key] = val
	}
	return settings, true
}

// unbackslash drops each backslash and keeps the byte after it.
func unbackslash(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			if i == len(s) {
				break
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parsePQDSN reads a DSN as lib/pq's NewConfig does: a postgres:// or
// postgresql:// URL is parsed by net/url and turned into a keyword/value
// string the way lib/pq does, then the keyword/value string is read by
// lib/pq's rules (Unicode white space, single quotes, backslashes).
func parsePQDSN(dsn string) (dsnTarget, bool) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		kv, ok := pqConvertURL(dsn)
		if !ok {
			return dsnTarget{}, false
		}
		dsn = kv
	}
	opts, ok := pqKeywordValues(dsn)
	if !ok {
		return dsnTarget{}, false
	}
	return pgTarget(opts["host"], opts["port"], opts["dbname"])
}

// pqConvertURL mirrors lib/pq's convertURL. A raw '@' after the user
// info (in the path, query or fragment) gives no name, as in
// pgxURLSettings.
func pqConvertURL(dsn string) (string, bool) {
	rest := dsn[strings.Index(dsn, "://")+3:]
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.IndexByte(rest, '@') >= 0 {
		return "", false
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", false
	}
	var kvs []string
	esc := strings.NewReplacer(`'`, `\'`, `\`, `\\`)
	accrue := func(k, v string) {
		if v != "" {
			kvs = append(kvs, k+"='"+esc.Replace(v)+"'")
		}
	}
	if host, port, err := net.SplitHostPort(u.Host); err != nil {
		accrue("host", u.Host)
	} else {
		accrue("host", host)
		accrue("port", port)
	}
	if u.Path != "" {
		accrue("dbname", u.Path[1:])
	}
	q := u.Query()
	for k := range q {
		// lib/pq also carries the user and password; they are not
		// needed for a name and are left out.
		if k != "user" && k != "password" {
			accrue(k, q.Get(k))
		}
	}
	sort.Strings(kvs)
	return strings.Join(kvs, " "), true
}

// pqKeywordValues mirrors lib/pq's fromDSN.
func pqKeywordValues(dsn string) (map[string]string, bool) {
	opt := map[string]string{}
	s := []rune(dsn)
	i := 0
	next := func() (rune, bool) {
		if i >= len(s) {
			return 0, false
		}
		r := s[i]
		i++
		return r, true
	}
	skipSpaces := func() (rune, bool) {
		r, ok := next()
		for unicode.IsSpace(r) && ok {
			r, ok = next()
		}
		return r, ok
	}
	for {
		var key, val []rune
		r, ok := skipSpaces()
		if !ok {
			break
		}
		for !unicode.IsSpace(r) && r != '=' {
			key = append(key, r)
			if r, ok = next(); !ok {
				break
			}
		}
		if r != '=' {
			r, ok = skipSpaces()
		}
		if r != '=' || !ok {
			return nil, false
		}
		if r, ok = skipSpaces(); !ok {
			opt[string(key)] = ""
			break
		}
		if r != '\'' {
			for !unicode.IsSpace(r) {
				if r == '\\' {
					if r, ok = next(); !ok {
						return nil, false
					}
				}
				val = append(val, r)
				if r, ok = next(); !ok {
					break
				}
			}
		} else {
		quote:
			for {
				if r, ok = next(); !ok {
					return nil, false
				}
				switch r {
				case '\'':
					break quote
				case '\\':
					r, _ = next()
					fallthrough
				default:
					val = append(val, r)
				}
			}
		}
		opt[string(key)] = string(val)
	}
	return opt, true
}

// sqliteName is the base name of the database file of a SQLite DSN: a
// file name whose parameters follow a '?', or a "file:" URI whose path
// ends at '?' or '#'. An in-memory database is fallback+":memory:".
func sqliteName(dsn, fallback string) string {
	name := dsn
	if rest, ok := strings.CutPrefix(dsn, "file:"); ok {
		name = rest
		if i := strings.IndexAny(name, "?#"); i >= 0 {
			name = name[:i]
		}
		if auth, ok := strings.CutPrefix(name, "//"); ok {
			// file://host/path: the authority is empty or localhost.
			i := strings.IndexByte(auth, '/')
			if i < 0 {
				return fallback
			}
			name = auth[i:]
		}
		if u, err := url.PathUnescape(name); err == nil {
			name = u
		}
	} else if i := strings.IndexByte(name, '?'); i >= 1 {
		name = name[:i]
	}
	query := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		query = dsn[i+1:]
	}
	if name == "" {
		return fallback // a private temporary database
	}
	if name == ":memory:" || strings.HasPrefix(dsn, "file:") && hasParam(query, "mode", "memory") {
		return fallback + ":memory:"
	}
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "" || strings.ContainsAny(name, "=;") {
		// No file name, or a connection string of another form
		// (Password=...;) taken for one.
		return fallback
	}
	return printable(name)
}

// hasParam reports whether the query has key=value.
func hasParam(query, key, value string) bool {
	for _, pair := range strings.Split(query, "&") {
		if k, v, _ := strings.Cut(pair, "="); k == key && v == value {
			return true
		}
	}
	return false
}
