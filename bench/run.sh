#!/usr/bin/env bash
# Runs sqlwatch's whole benchmark harness and prints one report: the
# micro-benchmark table (medians), the end-to-end table, and every budget
# with MET or MISSED. See README.md beside this file.
#
#   bench/run.sh                      # the full run: about 8-12 minutes
#   COUNT=9 BENCHTIME=2s bench/run.sh # more runs, longer benchmarks
#   E2E_ROUNDS=20 E2E_DURATION=2s bench/run.sh
#   STRICT=1 bench/run.sh             # exit 1 when a budget is missed
#
# Settings (environment): COUNT (micro runs, default 5), BENCHTIME (per
# benchmark and run, default 1s), EXTRA_PASSES (re-runs of benchmarks that
# lack clean runs because the machine was busy, default 3), E2E_ROUNDS (default 10), E2E_DURATION
# (per variant and round, default 1s), E2E_CLIENTS (default 16), OUT (where
# the raw outputs are kept; default a new directory under /tmp),
# SQLWATCH_POSTGRES_DSN and SQLWATCH_MYSQL_DSN (see e2e/main.go).
set -euo pipefail
cd "$(dirname "$0")"
export PATH=/usr/local/go/bin:$PATH

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
EXTRA_PASSES=${EXTRA_PASSES:-3}
E2E_ROUNDS=${E2E_ROUNDS:-10}
E2E_DURATION=${E2E_DURATION:-1s}
E2E_CLIENTS=${E2E_CLIENTS:-16}
OUT=${OUT:-$(mktemp -d /tmp/sqlwatch-bench.XXXXXX)}
mkdir -p "$OUT"

note() { printf '%s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

load_start=$(load)
note "== building (the library as it is in the work tree now)"
go test -c -o "$OUT/micro.test" .
go build -o "$OUT/e2e" ./e2e
go build -o "$OUT/table" ./cmd/table
started=$(date -u +%FT%TZ)

# The micro-benchmarks: COUNT separate runs of the whole suite rather than
# -count=COUNT, so that every variant is sampled across the whole time
# span and drift on the machine falls on all of them alike.
note "== micro-benchmarks: $COUNT runs × 40 benchmarks × $BENCHTIME"
: >"$OUT/micro.txt"
micro_rc=0
for i in $(seq 1 "$COUNT"); do
  note "   run $i/$COUNT"
  "$OUT/micro.test" -test.run '^$' -test.bench . -test.benchtime "$BENCHTIME" -test.count 1 >>"$OUT/micro.txt" || {
    micro_rc=$?
    note "   run $i FAILED (exit $micro_rc): $(grep -E -- '--- FAIL|FAIL|panic' "$OUT/micro.txt" | head -3)"
  }
done

# Runs disturbed by other work on the machine (see README.md) are left out
# of the medians; run the benchmarks that have too few clean runs again,
# up to EXTRA_PASSES times.
for pass in $(seq 1 "$EXTRA_PASSES"); do
  noisy=$("$OUT/table" -micro "$OUT/micro.txt" -list-noisy) || break
  [ -n "$noisy" ] || break
  note "   extra pass $pass/$EXTRA_PASSES: $(echo "$noisy" | wc -l) benchmarks lack 3 clean runs (machine busy)"
  # The whole operation, every variant, in one invocation: the table
  # pairs raw and sqlwatch by invocation (cmd/table's pairedDelta).
  for op in $(echo "$noisy" | sed 's,/.*,,' | sort -u); do
    "$OUT/micro.test" -test.run '^$' -test.bench "^${op}\$" -test.benchtime "$BENCHTIME" -test.count 1 \
      >>"$OUT/micro.txt" || micro_rc=$?
  done
done

note "== end-to-end: $E2E_ROUNDS rounds × $E2E_DURATION per variant, $E2E_CLIENTS clients"
e2e_rc=0
"$OUT/e2e" -rounds "$E2E_ROUNDS" -duration "$E2E_DURATION" -clients "$E2E_CLIENTS" -json "$OUT/e2e.json" \
  >"$OUT/e2e.txt" || e2e_rc=$?
load_end=$(load)

echo
echo "sqlwatch benchmarks — started $started on $(nproc) cores, $(go version | cut -d' ' -f3)"
echo "load average (1, 5, 15 min) before the build: $load_start; at the end: $load_end (includes this run's own work)"
echo "raw outputs: $OUT"
echo
table_args=(-micro "$OUT/micro.txt" -e2e "$OUT/e2e.json")
if [ "${STRICT:-0}" = 1 ]; then table_args+=(-strict); fi
table_rc=0
"$OUT/table" "${table_args[@]}" | tee "$OUT/report.txt" || table_rc=$?
if [ "$micro_rc" != 0 ]; then
  echo
  echo "micro-benchmarks FAILED (exit $micro_rc): see $OUT/micro.txt; the failed benchmarks are missing from the table"
  exit "$micro_rc"
fi
if [ "$e2e_rc" != 0 ]; then
  echo
  echo "e2e program FAILED (exit $e2e_rc): errors during the workloads or a database required and unreachable; see above"
  exit "$e2e_rc"
fi
exit "$table_rc"
