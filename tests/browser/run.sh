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

# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh --config tests/browser/microscope.json

mkdir -p target/browser
node tests/browser/ui.test.mjs "$URL" target/browser/ui.png
# The H.264 player (WebCodecs) on the same microscope.
node tests/browser/h264.test.mjs "$URL" target/browser/h264.png
# An instrument left running: the trend plot of a property's history (vendored uPlot), live;
# the health badge through a fault and its clearing.
node tests/browser/health-trends.test.mjs "$URL" target/browser/trends.png target/browser/fault.png
stop_microscope

# The same UI, and the API browser, with access tokens on.
# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh --config tests/browser/auth.json
node tests/browser/auth.test.mjs "$URL"
