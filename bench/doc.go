// Package bench holds sqlwatch's benchmark harness: micro-benchmarks of the
// wrapper over an in-memory driver (micro_bench_test.go), an end-to-end
// program against real databases (./e2e), and the table and budget report
// (./cmd/table). It is its own module, so that the peers it is compared
// with (otelsql, OpenTelemetry) never enter the library's go.mod. Run it
// all with ./run.sh; see README.md.
package bench
