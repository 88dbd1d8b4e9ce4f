// Package gdump reads goroutine dumps: which goroutines wait in
// database/sql or pgxpool for a connection, and of which pool, for the
// pool monitor's alerts.
package gdump

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"

	"github.com/sqlwatch/sqlwatch/stack"
)

// All returns the stacks of all goroutines, as runtime.Stack(buf, true)
// prints them, up to 64 MiB. It stops the world while it copies them:
// call it rarely (the pool monitor does, once per alert at most).
func All() []byte {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		if len(buf) >= 64<<20 {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Goroutine is one goroutine of a dump.
type Goroutine struct {
	ID     int64
	State  string // as printed, e.g. "select, 2 minutes"
	Frames []stack.Frame
	ConnDB string // the receiver of its database/sql.(*DB).conn frame, as printed ("0xc0000f2000"), if any
	// PgxPool is the receiver of its pgxpool.(*Pool).Acquire frame, as
	// printed, if any.
	PgxPool string
}

// PgxAcquire is the function of pgxpool's Acquire frame.
const PgxAcquire = "github.com/jackc/pgx/v5/pgxpool.(*Pool).Acquire"

// Parse reads runtime.Stack(buf, true) output:
//
//	goroutine 7 [select, 2 minutes]:
//	database/sql.(*DB).conn(0xc000, {0x1, 0x2}, 0x1)
//		/usr/local/go/src/database/sql/sql.go:1365 +0x5a5
//	...
func Parse(dump []byte) []Goroutine {
	var out []Goroutine
	for _, block := range bytes.Split(dump, []byte("\n\n")) {
		lines := strings.Split(strings.TrimSpace(string(block)), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "goroutine ") {
			continue
		}
		head := strings.TrimPrefix(lines[0], "goroutine ")
		idText, rest, _ := strings.Cut(head, " ")
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			continue
		}
		g := Goroutine{ID: id}
		if i, j := strings.IndexByte(rest, '['), strings.LastIndexByte(rest, ']'); i >= 0 && j > i {
			g.State = rest[i+1 : j]
		}
		for k := 1; k+1 < len(lines); k += 2 {
			fn := lines[k]
			if strings.HasPrefix(fn, "created by ") {
				break
			}
			if p := strings.LastIndexByte(fn, '('); p > 0 {
				arg, _, _ := strings.Cut(fn[p+1:], ",")
				arg = strings.TrimSuffix(strings.TrimSuffix(arg, ")"), "?")
				switch fn[:p] {
				case "database/sql.(*DB).conn":
					if g.ConnDB == "" {
						g.ConnDB = arg
					}
				case PgxAcquire:
					if g.PgxPool == "" {
						g.PgxPool = arg
					}
				}
				fn = fn[:p]
			}
			loc := strings.TrimSpace(lines[k+1])
			if sp := strings.LastIndexByte(loc, ' '); sp > 0 {
				loc = loc[:sp]
			}
			file, lineText, _ := strings.Cut(loc, ":")
			if c := strings.LastIndexByte(loc, ':'); c > 0 {
				file, lineText = loc[:c], loc[c+1:]
			}
			line, _ := strconv.Atoi(lineText)
			g.Frames = append(g.Frames, stack.Frame{Function: fn, File: file, Line: line})
		}
		out = append(out, g)
	}
	return out
}
