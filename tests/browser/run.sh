#!/usr/bin/env bash
# Browser suite: the web UI in headless Chromium (Debian's package, driven by playwright-core
# from npm; no browser is downloaded) against the microscope example.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

cargo build -q --example microscope
LOG=$(mktemp)
target/debug/examples/microscope --port 0 --config tests/browser/microscope.json >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT
URL=
for _ in $(seq 1 100); do
  URL=$(grep -o 'serving on http://[0-9.:]*' "$LOG" | head -n 1 | sed 's/serving on //') || true
  [ -n "$URL" ] && break
  sleep 0.1
done
[ -n "$URL" ] || { echo "the microscope example did not start:" >&2; cat "$LOG" >&2; exit 1; }

mkdir -p target/browser
node tests/browser/ui.test.mjs "$URL" target/browser/ui.png
