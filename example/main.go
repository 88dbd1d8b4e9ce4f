// Command example is a small HTTP service that shows sqlwatch finding
// leaks in ordinary database/sql code.
//
// The service opens its database through the sqlwatch driver,
// registered in front of the real one:
//
//	driver.RegisterByName("sqlwatch-sqlite", "sqlite",
//		driver.WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, nil))),
//		driver.WithThreshold(leak.KindTx, 2*time.Second), ...)
//	db, err := sql.Open("sqlwatch-sqlite", dsn)
//
// and serves four endpoints (handlers.go). GET /items is written
// correctly; the other three each carry a realistic bug on one of their
// error paths:
//
//	POST /orders?item=X&quantity=N   txleak:   400 without Commit or Rollback
//	GET  /report?period=day|week     connleak: returns before conn.Close()
//	GET  /export?format=csv|json     rowsleak: returns before rows.Close()
//
// When a transaction, checked-out connection, result set or prepared
// statement stays open longer than -leak-threshold (2s by default),
// sqlwatch logs a warning as JSON on stderr, naming the line in
// handlers.go that opened it:
//
//	{"level":"WARN","msg":"sqlwatch: transaction open for 2.5s (threshold 2s), begun at example/handlers.go:93","kind":"tx","origin":"example/handlers.go:93",...}
//
// Run it from the repository root:
//
//	go run ./example
//
// starts the service on 127.0.0.1:8080 over a SQLite database in a
// temporary directory (removed on exit), sends some good requests and
// then each bug's request once, so the leak reports appear on stderr
// within a few seconds; the service keeps serving until Ctrl-C. Try it by
// hand too:
//
//	curl -X POST 'localhost:8080/orders?item=widget'     # txleak
//	curl 'localhost:8080/report?period=month'            # connleak
//	curl 'localhost:8080/export?format=xml'              # rowsleak
//
// One scenario at a time, checked: -scenario sends that scenario's
// requests, waits for the report, prints it on stdout as one JSON object
// and exits 0 if its origin is in handlers.go, 1 if not:
//
//	go run ./example -scenario txleak
//	go run ./example -scenario connleak -leak-threshold 300ms
//	go run ./example -scenario rowsleak -serve   # then keep serving, leak still open
//
// Other databases (MariaDB/MySQL, PostgreSQL through lib/pq or pgx):
//
//	go run ./example -driver mysql -dsn 'root@tcp(127.0.0.1:3306)/test'
//	go run ./example -driver postgres -dsn 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./example -driver pgx -scenario txleak
//
// Without -dsn they use $SQLWATCH_MYSQL_DSN or $SQLWATCH_POSTGRES_DSN,
// else the DSNs above. The service creates the table sqlwatch_items if it
// does not exist. Flags:
//
//	-driver sqlite|mysql|postgres|pgx   the database driver (default sqlite)
//	-dsn DSN                            the data source name
//	-addr HOST:PORT                     where to listen (default 127.0.0.1:8080; port 0 picks one)
//	-leak-threshold DURATION            report what stays open longer (default 2s)
//	-scenario NAME                      run one scenario and exit with its result
//	-serve                              keep serving after -scenario; alone: serve without demo traffic
//	-log json|text                      the log format on stderr (default json; text reads better by eye)
//
// On start it logs where the live page and the metrics are:
//
//	time=... level=INFO msg="example: listening" addr=http://127.0.0.1:8080 page=http://127.0.0.1:8080/debug/sqlwatch metrics=http://127.0.0.1:8080/metrics ...
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/lib/pq"
	_ "modernc.org/sqlite"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sqlwatch/sqlwatch/driver"
	"github.com/sqlwatch/sqlwatch/leak"
	"github.com/sqlwatch/sqlwatch/metrics"
	"github.com/sqlwatch/sqlwatch/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// database describes one -driver value.
type database struct {
	inner   string // the driver's database/sql name
	dialect string // for the placeholders
	env     string // the environment variable holding the default DSN
	dsn     string // the default DSN when env is unset
}

var databases = map[string]database{
	"sqlite":   {inner: "sqlite", dialect: "sqlite"},
	"mysql":    {inner: "mysql", dialect: "mysql", env: "SQLWATCH_MYSQL_DSN", dsn: "root@tcp(127.0.0.1:3306)/test"},
	"postgres": {inner: "postgres", dialect: "postgres", env: "SQLWATCH_POSTGRES_DSN", dsn: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
	"pgx":      {inner: "pgx", dialect: "postgres", env: "SQLWATCH_POSTGRES_DSN", dsn: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
}

type config struct {
	driver    string
	dsn       string
	addr      string
	threshold time.Duration
	scenario  string
	serve     bool
	waitLimit time.Duration
	logFormat string
}

// parseFlags parses args; a non-negative code means exit with it.
func parseFlags(args []string, stderr io.Writer) (cfg config, code int) {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.driver, "driver", "sqlite", "database driver: sqlite, mysql, postgres (lib/pq) or pgx")
	fs.StringVar(&cfg.dsn, "dsn", "", "data source name (default: a temporary SQLite file, $SQLWATCH_MYSQL_DSN or $SQLWATCH_POSTGRES_DSN)")
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen address; port 0 picks a free port")
	fs.DurationVar(&cfg.threshold, "leak-threshold", 2*time.Second, "report a tx, conn, rows or stmt open longer than this")
	fs.StringVar(&cfg.scenario, "scenario", "", "run one leak scenario, print its report and exit 0 if it named handlers.go")
	fs.DurationVar(&cfg.waitLimit, "wait-limit", time.Second, "raise a pool alert when waits for a connection exceed this")
	fs.BoolVar(&cfg.serve, "serve", false, "keep serving after -scenario; without -scenario, serve without demo traffic")
	fs.StringVar(&cfg.logFormat, "log", "json", "log format on stderr: json or text")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./example [flags]\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nscenarios:\n%s", scenarioHelp())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, 0
		}
		return cfg, 2
	}
	usageError := func(format string, args ...any) (config, int) {
		fmt.Fprintf(stderr, "example: "+format+"\n\n", args...)
		fs.Usage()
		return cfg, 2
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments %q", fs.Args())
	}
	db, ok := databases[cfg.driver]
	if !ok {
		return usageError("unknown driver %q (want sqlite, mysql, postgres or pgx)", cfg.driver)
	}
	if cfg.logFormat != "json" && cfg.logFormat != "text" {
		return usageError("-log %q: want json or text", cfg.logFormat)
	}
	if cfg.waitLimit <= 0 {
		return usageError("-wait-limit %v: must be positive", cfg.waitLimit)
	}
	if cfg.threshold <= 0 {
		return usageError("-leak-threshold %v: must be positive", cfg.threshold)
	}
	if cfg.scenario != "" {
		if _, ok := findScenario(cfg.scenario); !ok {
			return usageError("unknown scenario %q (scenarios: %s)", cfg.scenario, strings.Join(scenarioNames(), ", "))
		}
	}
	if cfg.dsn == "" && db.env != "" {
		cfg.dsn = os.Getenv(db.env)
		if cfg.dsn == "" {
			cfg.dsn = db.dsn
		}
	}
	return cfg, -1
}

// run is the whole program; main only adds the signals and the exit.
// It serves until ctx ends, except with -scenario and without -serve.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stderr = &syncWriter{w: stderr} // shared by the logger, sqlwatch's watchdog and us
	cfg, code := parseFlags(args, stderr)
	if code >= 0 {
		return code
	}
	var handler slog.Handler = slog.NewJSONHandler(stderr, nil)
	if cfg.logFormat == "text" {
		handler = slog.NewTextHandler(stderr, nil)
	}
	logger := slog.New(handler)
	fatal := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "example: "+format+"\n", args...)
		return 1
	}

	// The default SQLite database lives in a temporary directory.
	if cfg.dsn == "" {
		dir, err := os.MkdirTemp("", "sqlwatch-example-")
		if err != nil {
			return fatal("%v", err)
		}
		defer os.RemoveAll(dir)
		cfg.dsn = filepath.Join(dir, "items.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	}

	// Open the database through sqlwatch. Reports are logged as JSON on
	// stderr and also handed to us as values, for -scenario.
	reports := make(chan leak.Report, 64)
	misuses := make(chan leak.Misuse, 64)
	opts := []driver.Option{
		driver.WithLogger(logger),
		driver.WithMisuseFunc(func(m leak.Misuse) {
			select {
			case misuses <- m:
			default:
			}
		}),
		driver.WithReportFunc(func(r leak.Report) {
			select {
			case reports <- r:
			default: // nobody is waiting (the demo): the log has it
			}
		}),
	}
	for _, k := range leak.Kinds() {
		opts = append(opts, driver.WithThreshold(k, cfg.threshold))
	}
	dbinfo := databases[cfg.driver]
	db, err := openDB(ctx, dbinfo.inner, cfg.dsn, opts...)
	if err != nil {
		return fatal("%v", err)
	}
	defer db.Close()
	var sc scenario
	if cfg.scenario != "" {
		sc, _ = findScenario(cfg.scenario)
		if sc.maxOpen > 0 {
			db.SetMaxOpenConns(sc.maxOpen)
		}
	}

	// Watch the pool: an alert when waits for a connection exceed the
	// limit or the pool stalls, listing who holds it and who waits.
	alerts := make(chan leak.PoolAlert, 16)
	mon, err := leak.NewMonitor(db, leak.MonitorConfig{
		Interval:  200 * time.Millisecond,
		WaitLimit: cfg.waitLimit,
		Logger:    logger,
		OnAlert: func(a leak.PoolAlert) {
			select {
			case alerts <- a:
			default:
			}
		},
	})
	if err != nil {
		return fatal("%v", err)
	}
	defer mon.Stop()

	// Metrics for Prometheus, on a registry of our own.
	reg := prometheus.NewRegistry()
	if err := metrics.Register(reg, db); err != nil {
		return fatal("%v", err)
	}

	// Serve.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fatal("%v", err)
	}
	s := &server{db: db, dialect: dbinfo.dialect, log: logger}
	mux := http.NewServeMux()
	mux.Handle("/", s.routes())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)}))
	// The live page of open resources. It shows SQL text: in a real service,
	// put it behind the protection given to net/http/pprof.
	mux.Handle("GET /debug/sqlwatch", leak.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	base := "http://" + ln.Addr().String()
	st, _ := leak.StatsOf(db)
	logger.Info("example: listening", "addr", base, "page", base+"/debug/sqlwatch", "metrics", base+"/metrics", "driver", cfg.driver, "db", st.DBName, "leak_threshold", cfg.threshold.String())

	c := &client{base: base, hc: &http.Client{Timeout: 60 * time.Second}}
	defer c.hc.CloseIdleConnections()
	// Requests a scenario leaves waiting end with it.
	sctx, cancelScenario := context.WithCancel(ctx)
	defer cancelScenario()

	code = 0
	switch {
	case cfg.scenario != "":
		switch {
		case slices.Contains(sc.notOn, cfg.driver):
			fmt.Fprintf(stderr, "example: scenario %s does not run on %s\n", sc.name, cfg.driver)
			return 2
		case sc.alert:
			code = runAlertScenario(sctx, sc, c, alerts, cfg.waitLimit, stdout, stderr)
		case sc.misuse != "":
			code = runMisuseScenario(sctx, sc, c, misuses, stdout, stderr)
		default:
			code = runScenario(sctx, sc, c, reports, cfg.threshold, stdout, stderr)
		}
		if !cfg.serve {
			return code
		}
		logger.Info("example: still serving, the leaked resources still open; interrupt to stop", "addr", base)
	case !cfg.serve:
		if err := demo(ctx, c, logger); err != nil && ctx.Err() == nil {
			return fatal("demo: %v", err)
		}
		logger.Info("example: demo traffic sent; sqlwatch reports the leaks once they are older than the threshold. Serving until interrupted",
			"addr", base, "leak_threshold", cfg.threshold.String())
	}

	select {
	case <-ctx.Done():
		logger.Info("example: shutting down")
	case err := <-serveErr:
		return fatal("serve: %v", err)
	}
	return code
}

// openDB registers the sqlwatch driver in front of inner and opens the
// database, creating the table.
func openDB(ctx context.Context, inner, dsn string, opts ...driver.Option) (*sql.DB, error) {
	name, err := registerDriver(inner, opts...)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(10)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to the %s database: %w", inner, err)
	}
	const schema = `CREATE TABLE IF NOT EXISTS sqlwatch_items (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL)`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating the table: %w", err)
	}
	return db, nil
}

// registerDriver registers the sqlwatch driver wrapping inner as
// "sqlwatch-"+inner and returns the name. database/sql's names are
// process-wide and sqlwatch binds the options to the registration, so
// when run is called again in the same process (the tests do), the new
// options are registered under "sqlwatch-"+inner+"-2", "-3", ...
func registerDriver(inner string, opts ...driver.Option) (string, error) {
	for i := 1; ; i++ {
		name := "sqlwatch-" + inner
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		err := driver.RegisterByName(name, inner, opts...)
		if errors.Is(err, driver.ErrDuplicateName) {
			continue
		}
		return name, err
	}
}

// demo sends the good traffic, then each scenario's requests once.
func demo(ctx context.Context, c *client, logger *slog.Logger) error {
	c.sent = func(req request, status int) {
		logger.Info("example: demo request", "method", req.method, "path", req.path, "status", status)
	}
	defer func() { c.sent = nil }()
	for _, req := range goodTraffic {
		if err := c.do(ctx, req); err != nil {
			return err
		}
	}
	for _, sc := range scenarios {
		if sc.alert || sc.misuse != "" {
			continue // run these with -scenario
		}
		logger.Info("example: demo scenario", "scenario", sc.name, "expect", sc.kind.String(), "description", sc.description)
		if err := sc.run(ctx, c); err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
	}
	return nil
}

// runScenario drives sc, waits for its report and prints it on stdout.
// It returns 0 when a report of the expected kind names handlers.go.
func runScenario(ctx context.Context, sc scenario, c *client, reports <-chan leak.Report, threshold time.Duration, stdout, stderr io.Writer) int {
	if err := sc.run(ctx, c); err != nil {
		fmt.Fprintf(stderr, "example: scenario %s: %v\n", sc.name, err)
		return 1
	}
	wait := threshold + 5*time.Second
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	var elsewhere *leak.Report // a report of the right kind, wrong origin
	for {
		select {
		case r := <-reports:
			if r.Released || r.Kind != sc.kind {
				continue
			}
			if !inHandlers(r) {
				elsewhere = &r
				continue
			}
			printReport(stdout, r)
			return 0
		case <-timeout.C:
			if elsewhere != nil {
				printReport(stdout, *elsewhere)
				fmt.Fprintf(stderr, "example: scenario %s: the %s report names %s, not %s\n",
					sc.name, sc.kind, elsewhere.Origin, shortPath(handlersFile))
			} else {
				fmt.Fprintf(stderr, "example: scenario %s: no %s leak reported within %v\n", sc.name, sc.kind, wait)
			}
			return 1
		case <-ctx.Done():
			fmt.Fprintf(stderr, "example: scenario %s: interrupted\n", sc.name)
			return 1
		}
	}
}

// runAlertScenario drives sc and waits for a pool alert whose holders are
// all in handlers.go; it prints the alert on stdout.
func runAlertScenario(ctx context.Context, sc scenario, c *client, alerts <-chan leak.PoolAlert, limit time.Duration, stdout, stderr io.Writer) int {
	if err := sc.run(ctx, c); err != nil {
		fmt.Fprintf(stderr, "example: scenario %s: %v\n", sc.name, err)
		return 1
	}
	wait := 3*limit + 5*time.Second
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		select {
		case a := <-alerts:
			if a.Recovered {
				continue
			}
			json.NewEncoder(stdout).Encode(alertJSON(a))
			ok := len(a.Holders) >= sc.maxOpen && len(a.Waiters) > 0
			for _, h := range a.Holders {
				ok = ok && strings.HasPrefix(h.Origin, shortPath(handlersFile)+":")
			}
			if !ok {
				fmt.Fprintf(stderr, "example: scenario %s: the alert does not list %d holders in %s and a waiter\n",
					sc.name, sc.maxOpen, shortPath(handlersFile))
				return 1
			}
			return 0
		case <-timeout.C:
			fmt.Fprintf(stderr, "example: scenario %s: no pool alert within %v\n", sc.name, wait)
			return 1
		case <-ctx.Done():
			fmt.Fprintf(stderr, "example: scenario %s: interrupted\n", sc.name)
			return 1
		}
	}
}

// runMisuseScenario drives sc and waits for a misuse report of its kind
// whose origin is in handlers.go; it prints the report on stdout.
func runMisuseScenario(ctx context.Context, sc scenario, c *client, misuses <-chan leak.Misuse, stdout, stderr io.Writer) int {
	if err := sc.run(ctx, c); err != nil {
		fmt.Fprintf(stderr, "example: scenario %s: %v\n", sc.name, err)
		return 1
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m := <-misuses:
			if m.Kind != sc.misuse || !strings.HasPrefix(m.Here.Origin, shortPath(handlersFile)+":") {
				continue
			}
			json.NewEncoder(stdout).Encode(misuseJSON(m))
			return 0
		case <-timeout.C:
			fmt.Fprintf(stderr, "example: scenario %s: no %s report naming %s within 10s\n", sc.name, sc.misuse, shortPath(handlersFile))
			return 1
		case <-ctx.Done():
			fmt.Fprintf(stderr, "example: scenario %s: interrupted\n", sc.name)
			return 1
		}
	}
}

// misuseJSON is a misuse report as -scenario prints it.
func misuseJSON(m leak.Misuse) map[string]any {
	out := map[string]any{"kind": m.Kind, "db_name": m.DBName, "origin": m.Here.Origin, "func": m.Here.Func,
		"goroutine": m.Here.Goroutine, "query": m.Here.Query}
	if m.There.Origin != "" {
		out["there"] = m.There
	}
	if m.Class != "" {
		out["class"] = m.Class
	}
	if m.Kind == leak.MisuseLockConflict {
		out["holders"] = m.Holders
	}
	if m.Kind == leak.MisuseConnKilled {
		out["state"], out["age"], out["idle"] = m.State, m.Age.Round(time.Millisecond).String(), m.Idle.Round(time.Millisecond).String()
	}
	if m.Kind == leak.MisuseSQLTxLeak {
		out["state"], out["age"] = m.State, m.Age.Round(time.Millisecond).String()
	}
	return out
}

// alertJSON is the alert as -scenario prints it.
func alertJSON(a leak.PoolAlert) map[string]any {
	return map[string]any{
		"kind": "pool_wait", "db_name": a.DBName, "reason": a.Reason,
		"in_use": a.Stats.InUse, "max_open": a.Stats.MaxOpenConnections, "wait_count": a.Stats.WaitCount,
		"since_return": a.SinceReturn.Round(time.Millisecond).String(),
		"holders":      a.Holders, "waiters": a.Waiters, "self_deadlock": a.SelfDeadlock,
	}
}

// inHandlers reports whether r's origin is in handlers.go.
func inHandlers(r leak.Report) bool {
	return len(r.Stack) > 0 && r.Stack[0].File == handlersFile &&
		strings.HasPrefix(r.Origin, shortPath(handlersFile)+":")
}

// shortPath is file as a report's Origin shows it: "example/handlers.go".
func shortPath(file string) string {
	return strings.TrimSuffix(stack.Frame{File: file}.Location(), ":0")
}

// reportJSON is the report printed by -scenario.
type reportJSON struct {
	Kind       string   `json:"kind"`
	DBName     string   `json:"db_name"`
	Age        string   `json:"age"`
	Threshold  string   `json:"threshold"`
	Origin     string   `json:"origin"`
	Func       string   `json:"func"`
	Statements int64    `json:"statements"`
	LastQuery  string   `json:"last_query"`
	Stack      []string `json:"stack"`
}

func printReport(w io.Writer, r leak.Report) {
	out := reportJSON{
		Kind:       r.Kind.String(),
		DBName:     r.DBName,
		Age:        r.Age.Round(time.Millisecond).String(),
		Threshold:  r.Threshold.String(),
		Origin:     r.Origin,
		Func:       r.Func,
		Statements: r.Statements,
		LastQuery:  r.LastQuery,
		Stack:      make([]string, len(r.Stack)),
	}
	for i, f := range r.Stack {
		out.Stack[i] = f.Function + " " + f.Location()
	}
	json.NewEncoder(w).Encode(out)
}

// syncWriter serializes writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
