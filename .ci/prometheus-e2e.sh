#!/usr/bin/env bash
# End-to-end check of the Prometheus side of sqlwatch, run by CI from the
# repository root once the tests pass:
#
#   1. promtool checks the shipped config and alert rules
#      (example/prometheus/) and runs their unit tests
#      (testdata/prometheus/alerts_test.yml);
#   2. the example service is built and started on a free loopback port
#      with -scenario txleak -serve, so one transaction stays open;
#   3. its /metrics is linted with promtool check metrics and must hold
#      every sqlwatch_* and go_sql_* family, with the pool's db_name, and
#      the open transaction;
#   4. a real Prometheus, on a copy of the shipped config pointed at that
#      port, must scrape it: the query API must return sqlwatch_tx_open and
#      go_sql_open_connections for the example's db_name, and every alert
#      rule must evaluate without error;
#   5. every alert has a runbook_url whose section is in docs/runbook.md;
#   6. every query of the Grafana dashboard (example/grafana/sqlwatch.json)
#      runs on that Prometheus with the example's job, instance and
#      db_name, without error, and each series selector in it matches at
#      least one scraped series (example's TestDashboardQueries).
#
# It installs the Debian prometheus package if promtool or prometheus is
# missing, uses no fixed port and does not use any Prometheus already
# running. Everything it starts is stopped on exit. Exit status 0 means
# every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

JOB=sqlwatch-example
CONFIG=example/prometheus/prometheus.yml
RULES=example/prometheus/alerts.yml
RULE_TESTS=testdata/prometheus/alerts_test.yml
SHIPPED_TARGET=127.0.0.1:8080

# The metric families the alert rules and dashboards rely on. The example
# must export each one with its pool's db_name.
FAMILIES=(
  sqlwatch_tx_open
  sqlwatch_tx_oldest_age_seconds
  sqlwatch_tx_duration_seconds
  sqlwatch_conn_checked_out
  sqlwatch_conn_oldest_checkout_seconds
  sqlwatch_conn_hold_seconds
  sqlwatch_leaks_total
  sqlwatch_statement_duration_seconds
  sqlwatch_errors_total
  sqlwatch_pool_wait_alerts_total
  go_sql_max_open_connections
  go_sql_open_connections
  go_sql_in_use_connections
  go_sql_idle_connections
  go_sql_wait_count_total
  go_sql_wait_duration_seconds_total
  go_sql_max_idle_closed_total
  go_sql_max_idle_time_closed_total
  go_sql_max_lifetime_closed_total
)

log() { printf '\n== %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sqlwatch-prom-e2e.XXXXXX")
example_pid=
prom_pid=

# show_logs prints the end of the example's and Prometheus's output.
show_logs() {
  local f
  for f in "$tmp/example.out" "$tmp/example.err" "$tmp/prometheus.log"; do
    if [ -s "$f" ]; then
      printf -- '--- last lines of %s\n' "${f##*/}" >&2
      tail -n 30 "$f" >&2
    fi
  done
}

fail() {
  printf '\nprometheus-e2e: FAILED: %s\n' "$*" >&2
  show_logs
  exit 1
}

cleanup() {
  local pid
  for pid in "$prom_pid" "$example_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a TCP port free on 127.0.0.1 right now.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
    return
  fi
  local p i
  for i in $(seq 1 50); do
    p=$(( (RANDOM % 30000) + 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  fail "found no free port"
}

# still_running NAME PID fails if the process has exited.
still_running() {
  kill -0 "$2" 2>/dev/null || fail "$1 exited early"
}

# promql_quote escapes a label value for a PromQL string literal.
promql_quote() {
  local v=${1//\\/\\\\}
  printf '%s' "${v//\"/\\\"}"
}

# query PROMPORT EXPR prints the JSON answer of the instant query API.
query() {
  curl -sfG --max-time 5 "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2"
}

# ---------------------------------------------------------------------------
log "promtool"
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  log "installing prometheus (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
  # The package may start its own service on :9090; this script never
  # uses it (it runs its own Prometheus on a free port).
fi
command -v curl >/dev/null 2>&1 || fail "curl is missing"
promtool --version 2>&1 | head -n 1

log "promtool check config $CONFIG"
promtool check config "$CONFIG" || fail "promtool check config $CONFIG"

log "promtool check rules $RULES"
promtool check rules "$RULES" || fail "promtool check rules $RULES"

log "promtool test rules $RULE_TESTS"
(cd "$(dirname "$RULE_TESTS")" && promtool test rules "$(basename "$RULE_TESTS")") \
  || fail "promtool test rules $RULE_TESTS"

# ---------------------------------------------------------------------------
log "building and starting the example (-scenario txleak -serve)"
go build -o "$tmp/example" ./example || fail "go build ./example failed"
port=$(free_port)
"$tmp/example" -driver sqlite -addr "127.0.0.1:$port" -serve -scenario txleak -leak-threshold 300ms \
  >"$tmp/example.out" 2>"$tmp/example.err" &
example_pid=$!
metrics_url="http://127.0.0.1:$port/metrics"
echo "example: pid $example_pid, $metrics_url"

status=
for _ in $(seq 1 150); do # 30s
  still_running "the example" "$example_pid"
  status=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$metrics_url" || true)
  [ "$status" = 200 ] && break
  sleep 0.2
done
[ "$status" = 200 ] || fail "$metrics_url did not answer 200 within 30s (last HTTP status: ${status:-none})"

# The txleak scenario prints its leak report as one JSON line on stdout
# once the transaction it leaves open is older than -leak-threshold.
ok=
for _ in $(seq 1 75); do # 15s
  still_running "the example" "$example_pid"
  if grep -q '"kind":"tx"' "$tmp/example.out"; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "the txleak scenario printed no tx leak report within 15s"
db=$(grep -m1 '"kind":"tx"' "$tmp/example.out" | sed -n 's/.*"db_name":"\([^"]*\)".*/\1/p')
[ -n "$db" ] || fail "no db_name in the leak report: $(head -c 300 "$tmp/example.out")"
echo "example: the txleak report names db_name=$db"

# ---------------------------------------------------------------------------
log "promtool check metrics on $metrics_url"
curl -sf --max-time 5 "$metrics_url" >"$tmp/metrics.txt" || fail "GET $metrics_url failed"
echo "$(grep -vc '^#' "$tmp/metrics.txt") samples"
if ! problems=$(promtool check metrics <"$tmp/metrics.txt" 2>&1); then
  printf '%s\n' "$problems" >&2
  fail "promtool check metrics reported problems in $metrics_url"
fi
[ -z "$problems" ] || printf '%s\n' "$problems"

log "metric families with db_name=\"$db\""
missing=()
for fam in "${FAMILIES[@]}"; do
  # A sample of the family (histograms: _bucket, _sum, _count) whose
  # labels include db_name="$db".
  if ! awk -v fam="$fam" -v want="db_name=\"$db\"" '
      /^#/ { next }
      {
        name = $0; sub(/[{ ].*/, "", name)
        if (name == fam || name == fam "_bucket" || name == fam "_sum" || name == fam "_count") {
          labels = $0; sub(/}.*/, "}", labels)
          if (index(labels, "{" want ",") || index(labels, "," want ",") || index(labels, "," want "}") || index(labels, "{" want "}")) { found = 1; exit }
        }
      }
      END { exit !found }' "$tmp/metrics.txt"; then
    missing+=("$fam")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  fail "$metrics_url lacks these families for db_name=\"$db\": ${missing[*]}"
fi
echo "all ${#FAMILIES[@]} families present"

# The leaked transaction must show in the gauge.
tx_open=$(awk -v want="db_name=\"$db\"" '/^sqlwatch_tx_open[{]/ && index($0, want) { print $NF; exit }' "$tmp/metrics.txt")
echo "sqlwatch_tx_open = ${tx_open:-none}"
awk -v v="${tx_open:-0}" 'BEGIN { exit !(v + 0 >= 1) }' \
  || fail "sqlwatch_tx_open for db_name=\"$db\" is ${tx_open:-missing}, want >= 1 (the txleak scenario leaves a transaction open)"

# ---------------------------------------------------------------------------
log "Prometheus scraping the example"
promport=$(free_port)
mkdir -p "$tmp/prom"
sed -e "s/${SHIPPED_TARGET//./\\.}/127.0.0.1:$port/g" \
    -e 's/^\([[:space:]]*\)scrape_interval:.*/\1scrape_interval: 1s/' \
    -e 's/^\([[:space:]]*\)evaluation_interval:.*/\1evaluation_interval: 1s/' \
    "$CONFIG" >"$tmp/prom/prometheus.yml"
cp "$RULES" "$tmp/prom/$(basename "$RULES")"
grep -q "127.0.0.1:$port" "$tmp/prom/prometheus.yml" \
  || fail "could not point the target of $CONFIG ($SHIPPED_TARGET) at 127.0.0.1:$port"
grep -q 'scrape_interval: 1s' "$tmp/prom/prometheus.yml" \
  || fail "could not set scrape_interval in a copy of $CONFIG"
promtool check config "$tmp/prom/prometheus.yml" >/dev/null || fail "promtool check config on the temporary config"

prometheus --config.file="$tmp/prom/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$promport" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
echo "prometheus: pid $prom_pid, http://127.0.0.1:$promport, scraping 127.0.0.1:$port every 1s"

dbq=$(promql_quote "$db")
sel="job=\"$JOB\",instance=\"127.0.0.1:$port\",db_name=\"$dbq\""
queries=(
  "sqlwatch_tx_open{$sel} >= 1"
  "go_sql_open_connections{$sel} >= 1"
)
deadline=$((SECONDS + 30))
declare -A answer=()
while :; do
  still_running "prometheus" "$prom_pid"
  still_running "the example" "$example_pid"
  pending=0
  for q in "${queries[@]}"; do
    [ -n "${answer[$q]:-}" ] && continue
    if out=$(query "$promport" "$q" 2>/dev/null) && [[ $out == *'"status":"success"'* && $out == *'"result":[{'* ]]; then
      answer[$q]=$out
    else
      pending=$((pending + 1))
    fi
  done
  [ "$pending" -eq 0 ] && break
  if [ $SECONDS -ge $deadline ]; then
    echo "targets:" >&2
    curl -sf --max-time 5 "http://127.0.0.1:$promport/api/v1/targets" >&2 || true
    echo >&2
    for q in "${queries[@]}"; do
      [ -n "${answer[$q]:-}" ] || echo "no result within 30s: $q  (last answer: ${out:-none})" >&2
    done
    fail "Prometheus did not get the example's metrics for db_name=\"$db\" within 30s"
  fi
  sleep 1
done
for q in "${queries[@]}"; do
  printf '%s\n  %s\n' "$q" "${answer[$q]}"
done

# Every alert rule must evaluate without error on the scraped data. The
# rules run every second; wait a few evaluations past the first scrape
# (a rule evaluated on an empty database cannot fail).
log "alert rules of $RULES in Prometheus"
nrules=$(grep -c '^[[:space:]]*- alert:' "$RULES" || true)
[ "$nrules" -gt 0 ] || fail "no alert rules in $RULES"
sleep 3
nok=0
for _ in $(seq 1 10); do
  rules=$(curl -sf --max-time 5 "http://127.0.0.1:$promport/api/v1/rules?type=alert") \
    || fail "GET /api/v1/rules failed"
  if [[ $rules == *'"health":"err"'* ]]; then
    printf '%s\n' "$rules" >&2
    fail "an alert rule of $RULES fails to evaluate in Prometheus"
  fi
  nok=$(grep -o '"health":"ok"' <<<"$rules" | wc -l || true)
  [ "$nok" -ge "$nrules" ] && break
  sleep 1
done
[ "$nok" -ge "$nrules" ] || fail "only $nok of the $nrules alert rules of $RULES were evaluated"
echo "$nok of $nrules alert rules evaluated, health ok"

log "runbook_url of every alert in $RULES"
RUNBOOK=docs/runbook.md
nurls=$(grep -c '^[[:space:]]*runbook_url:' "$RULES" || true)
[ "$nurls" -eq "$nrules" ] || fail "$nrules alerts but $nurls runbook_url annotations in $RULES"
for a in $(sed -n 's/^[[:space:]]*- alert:[[:space:]]*//p' "$RULES"); do
  anchor=$(tr '[:upper:]' '[:lower:]' <<<"$a")
  grep -q "runbook.md#$anchor\"" "$RULES" || fail "alert $a has no runbook_url ending in runbook.md#$anchor"
  grep -qx "## $a" "$RUNBOOK" || fail "$RUNBOOK has no section '## $a'"
done
echo "$nrules alerts, each with its section in $RUNBOOK"

log "the Grafana dashboard's queries against Prometheus"
if ! out=$(SQLWATCH_PROMETHEUS_URL="http://127.0.0.1:$promport" \
    SQLWATCH_DASHBOARD_VARS="job=$JOB,instance=127.0.0.1:$port,db_name=$db" \
    go test -count=1 -run '^TestDashboardQueries$' -v ./example 2>&1); then
  printf '%s\n' "$out" >&2
  fail "a query of example/grafana/sqlwatch.json failed or names no existing series"
fi
grep -E 'queries and [0-9]+ selectors checked' <<<"$out" \
  || { printf '%s\n' "$out" >&2; fail "TestDashboardQueries did not run"; }

log "prometheus-e2e: all green"
