// Package stack describes the call stacks in sqlwatch's reports: [Frame] is
// one frame, and [DefaultLibraries] the prefixes whose frames are never a
// report's origin (driver.WithLibraries adds more). A function name matches
// a prefix it equals or continues with "." or "/": "database/sql" covers
// "database/sql/driver", not "database/sqlx", and a package's prefix does
// not cover its _test package. A vendored name is matched after its last
// "/vendor/".
package stack

import (
	"strconv"
	"strings"
)

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

// Location returns f's "dir/file.go:LINE" (last directory, base name, line;
// "?" for an empty File), with forward slashes; a Windows volume such as
// "C:" is not a directory.
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
