// Package stack describes the call stacks in sqlwatch's reports: a
// [Frame] is one frame of the application's code, and [DefaultLibraries]
// lists the package path prefixes whose frames are never taken for the
// origin of a report.
//
// A frame is a library's when its fully qualified function name, such as
// "database/sql.(*DB).BeginTx" or "gorm.io/gorm.(*DB).Begin[...]", is
// one of the prefixes or continues it with "." or "/": prefixes match
// whole path elements only, so "database/sql" covers
// "database/sql/driver" but not "database/sqlx", and
// "github.com/sqlwatch/sqlwatch/driver" does not cover the external test
// package "github.com/sqlwatch/sqlwatch/driver_test": tests count as the
// application. The package main is never in the default list. A vendored
// name is matched on the part after its last "/vendor/". Add prefixes
// (the application's own data-access layer) with driver.WithLibraries.
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
