#!/usr/bin/env bash
# Loads the live page (/debug/sqlwatch) in a real headless browser. It
# builds the example, starts it on a free loopback port with a leaked
# transaction (-scenario txleak -serve), waits for the page to answer, and
# asserts that the DOM Chromium renders lists the tx with its origin in
# example/handlers.go. It also takes a screenshot, kept in a temporary
# directory outside the repository (its path is printed). Run from the
# repository root; .ci/run calls it. Installs Debian's chromium if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

say() { printf 'browser-check: %s\n' "$*"; }
fail() { printf 'browser-check: FAILED: %s\n' "$*" >&2; exit 1; }

browser=""
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  say "installing chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || fail "could not install chromium with apt-get"
  browser=chromium
fi
say "browser: $("$browser" --version 2>/dev/null || echo "$browser")"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sqlwatch-browser.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp/profile" "$tmp/example"
}
trap cleanup EXIT

say "building the example"
go build -o "$tmp/example" ./example

say "starting the example on a free loopback port (-scenario txleak -serve)"
"$tmp/example" -scenario txleak -serve -leak-threshold 300ms -addr 127.0.0.1:0 \
  >"$tmp/example.out" 2>"$tmp/example.err" &
pid=$!

# The example logs the address it listens on (port 0: the kernel picks
# one); the scenario's report appears on stdout once the tx is past the
# threshold.
url=""
for _ in $(seq 1 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$tmp/example.out" "$tmp/example.err" >&2
    fail "the example exited early"
  fi
  if [ -z "$url" ]; then
    base=$(grep -o '"example: listening","addr":"http://127\.0\.0\.1:[0-9]*"' "$tmp/example.err" | head -1 | cut -d'"' -f6 || true)
    [ -n "$base" ] && url="$base/debug/sqlwatch"
  fi
  if [ -n "$url" ] && [ -s "$tmp/example.out" ] && curl -fsS -o /dev/null "$url" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$url" ] || ! curl -fsS -o /dev/null "$url" || [ ! -s "$tmp/example.out" ]; then
  cat "$tmp/example.out" "$tmp/example.err" >&2
  fail "the page (${url:-address not logged}) did not answer, or the txleak scenario did not report, within 15s"
fi
say "page: $url"
say "scenario report: $(head -c 200 "$tmp/example.out")"

flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run
  --disable-component-update --disable-sync --disable-dev-shm-usage --user-data-dir="$tmp/profile")

say "rendering $url"
if ! timeout 60 "$browser" "${flags[@]}" --dump-dom "$url" >"$tmp/dom.html" 2>"$tmp/chromium.err"; then
  cat "$tmp/chromium.err" >&2
  fail "chromium --dump-dom failed"
fi
[ -s "$tmp/dom.html" ] || { cat "$tmp/chromium.err" >&2; fail "chromium dumped an empty DOM"; }

# The tx's row: from <tr class="resource tx ..."> to its </tr>.
awk '/<tr class="resource tx[ "]/{f=1} f{print} f&&/<\/tr>/{exit}' "$tmp/dom.html" >"$tmp/tx-row.html"
[ -s "$tmp/tx-row.html" ] && grep -q '<td class="kind">tx</td>' "$tmp/tx-row.html" \
  || fail "the rendered page lists no transaction (kind tx); DOM in $tmp/dom.html"
origin=$(grep -o 'example/handlers\.go:[0-9]*' "$tmp/tx-row.html" | head -1 || true)
[ -n "$origin" ] || fail "the tx's row does not show its origin example/handlers.go:LINE; DOM in $tmp/dom.html"
want=$(grep -o '"origin":"example/handlers\.go:[0-9]*"' "$tmp/example.out" | head -1 | cut -d'"' -f4 || true)
if [ -n "$want" ] && [ "$want" != "$origin" ]; then
  fail "the scenario reported the tx at $want, the page shows $origin; DOM in $tmp/dom.html"
fi
grep -q '<details>' "$tmp/tx-row.html" || fail "the tx's row has no <details> stack; DOM in $tmp/dom.html"
say "ok: the rendered page lists the leaked tx begun at $origin"

if timeout 60 "$browser" "${flags[@]}" --screenshot="$tmp/page.png" --window-size=1280,900 "$url" \
    >/dev/null 2>"$tmp/chromium-shot.err" && [ -s "$tmp/page.png" ]; then
  say "screenshot: $tmp/page.png"
else
  cat "$tmp/chromium-shot.err" >&2
  fail "chromium --screenshot failed"
fi
say "DOM: $tmp/dom.html"
