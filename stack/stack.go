// Package stack captures call stacks cheaply and filters them down to the
// application's own frames.
//
// Work is split between two paths. On the hot path, when a transaction or
// connection is handed out, [Stack.Capture] records the calling goroutine's
// program counters into a fixed-size array held by value in a [Stack]: it
// does not allocate and does not symbolize. Only when a leak is reported are
// the program counters turned into [Frame] values by [Frames], and a [Filter]
// then drops the frames that belong to libraries (the runtime, database/sql,
// ORMs, drivers and sqlwatch itself) to find the origin: the innermost frame
// of the application's own code, usually shown as [Frame.Location], for
// example "handlers/orders.go:42".
//
// A Stack holds at most [Depth] program counters; deeper stacks keep their
// innermost Depth frames and lose the outermost ones. Because one program
// counter may stand for several inlined calls, [Frames] can return more than
// [Stack.Len] frames.
//
// A [Filter] classifies a frame by its fully qualified function name, such as
// "database/sql.(*DB).BeginTx" or "gorm.io/gorm.(*DB).Begin[...]", against a
// list of package path prefixes (see [DefaultLibraries] and
// [Filter.IsLibrary]). A prefix matches whole path elements only, so
// "database/sql" covers "database/sql/driver" but not "database/sqlx", and
// "github.com/sqlwatch/sqlwatch/driver" does not cover the external test
// package "github.com/sqlwatch/sqlwatch/driver_test": tests count as the
// application. The package main is never in the default list.
//
// A Stack is a plain value: it may be copied, and it is safe to read from
// several goroutines, but a Stack must not be read while it is being
// captured into. A Filter is immutable once built by [NewFilter] and is
// safe for concurrent use.
package stack

import (
	"runtime"
	"strconv"
	"strings"

	"github.com/sqlwatch/sqlwatch/internal/frames"
)

// Depth is the number of program counters a Stack holds.
const Depth = 32

// Stack is a captured call stack: program counters in a fixed array.
// The zero value is an empty stack. It never allocates.
type Stack struct {
	n   int32
	pcs [Depth]uintptr
}

// Capture fills s with the calling goroutine's stack, replacing whatever s
// held before. skip is the number of frames to skip, with 0 identifying the
// caller of Capture, 1 that function's caller, and so on; a negative skip is
// treated as 0. At most [Depth] frames are kept, the innermost ones.
//
// Capture does not allocate. It panics if s is nil.
//
// On amd64 and arm64 Capture walks the frame pointers the Go compiler
// maintains (tens of nanoseconds), as the runtime's execution tracer does;
// elsewhere, or built with the tag sqlwatch_nofp, it calls runtime.Callers
// (about a microsecond). With frame pointers, skip counts physical frames:
// a function inlined into its caller has none of its own.
//
//go:noinline
func (s *Stack) Capture(skip int) {
	if skip < 0 {
		skip = 0
	}
	if frames.Physical && skip < maxSkip {
		// The walk starts at Capture's frame: its first return address
		// is in Capture's caller.
		if n, _ := frames.Callers(skip, s.pcs[:], false); n > 0 {
			s.n = int32(n)
			return
		}
	}
	// runtime.Callers: 0 is Callers itself, 1 is Capture, 2 is our caller.
	s.n = int32(runtime.Callers(skip+2, s.pcs[:]))
}

// maxSkip bounds the frames the frame-pointer walk can skip.
const maxSkip = 16

// PCs returns the captured program counters, innermost first. The result
// is a slice of s's own array, not a copy: it is valid as long as s is and
// changes if s is captured into again. It is empty for a zero or nil Stack.
//
// The values are return addresses; use [Frames] (or
// runtime.CallersFrames) to symbolize them.
func (s *Stack) PCs() []uintptr {
	if s == nil {
		return nil
	}
	return s.pcs[:s.n]
}

// Len returns the number of captured frames (program counters). It is 0 for
// a zero or nil Stack.
func (s *Stack) Len() int {
	if s == nil {
		return 0
	}
	return int(s.n)
}

// Frame is one symbolized frame.
type Frame struct {
	// Function is the fully qualified function name, as in
	// "database/sql.(*DB).BeginTx" or "main.handler.func1".
	Function string
	// File is the full path of the source file, as recorded by the
	// compiler (forward slashes, unless built on Windows).
	File string
	// Line is the line number in File, or 0 if unknown.
	Line int
}

// Location returns the short "dir/file.go:LINE" form of f: the last
// directory of f.File and its base name, then the line. For example, a
// frame at "/home/a/svc/handlers/orders.go" line 42 gives
// "handlers/orders.go:42", and a file with no directory gives
// "orders.go:42". The result always uses forward slashes; backslashes in
// File are treated as separators and a Windows volume name such as "C:" is
// not taken for a directory. An empty File is shown as "?".
func (f Frame) Location() string {
	return shortFile(f.File) + ":" + strconv.Itoa(f.Line)
}

// shortFile returns the last directory and base name of file.
func shortFile(file string) string {
	if file == "" {
		return "?"
	}
	file = strings.ReplaceAll(file, `\`, "/")
	i := strings.LastIndexByte(file, '/')
	if i < 0 {
		return file
	}
	dir := file[strings.LastIndexByte(file[:i], '/')+1 : i]
	if dir == "" || isVolume(dir) {
		return file[i+1:]
	}
	return file[i-len(dir):]
}

// isVolume reports whether dir is a Windows drive name such as "C:".
func isVolume(dir string) bool {
	return len(dir) == 2 && dir[1] == ':' &&
		('a' <= dir[0] && dir[0] <= 'z' || 'A' <= dir[0] && dir[0] <= 'Z')
}

// String returns f in the form "Function (File:Line)", with "?" standing
// for an empty Function or File.
func (f Frame) String() string {
	fn, file := f.Function, f.File
	if fn == "" {
		fn = "?"
	}
	if file == "" {
		file = "?"
	}
	return fn + " (" + file + ":" + strconv.Itoa(f.Line) + ")"
}

// Frames symbolizes s, innermost frame first. It is the slow path: it uses
// runtime.CallersFrames, expands inlined calls into frames of their own
// (so it may return more than s.Len() frames), and drops frames whose
// function name is unknown. It returns nil for a nil or empty Stack.
func Frames(s *Stack) []Frame {
	pcs := s.PCs()
	if len(pcs) == 0 {
		return nil
	}
	frames := make([]Frame, 0, len(pcs))
	it := runtime.CallersFrames(pcs)
	for {
		fr, more := it.Next()
		if fr.Function != "" && !isGoWrapper(fr.Function) && fr.File != "<autogenerated>" {
			frames = append(frames, Frame{Function: fr.Function, File: fr.File, Line: fr.Line})
		}
		if !more {
			break
		}
	}
	return frames
}

// isGoWrapper reports whether fn is a compiler-generated wrapper for a go
// statement ("pkg.F.gowrap1"), which runtime.Callers leaves out and a
// frame-pointer walk does not (nor method-value wrappers, "pkg.T.M-fm",
// whose file is "<autogenerated>": Frames drops both).
func isGoWrapper(fn string) bool {
	i := strings.LastIndex(fn, ".gowrap")
	if i < 0 {
		return false
	}
	rest := fn[i+len(".gowrap"):]
	if rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
