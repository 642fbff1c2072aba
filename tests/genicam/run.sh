#!/usr/bin/env bash
# GenICam suite (issue 24): the `aravis` feature's camera Thing against Aravis's in-process
# fake camera and its fake GigE Vision camera (`arv-fake-gv-camera-0.8`, a process of its own
# on 127.0.0.1, spoken to over GVCP/GVSP). The integration tests in tests/it/genicam.rs (real
# server, real HTTP), the unit tests of the feature names and of the refusals' statuses,
# clippy on all of it, and the example under `--fake` in the web UI (headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/aravis-deps.sh
source tests/support/aravis-deps.sh
# Only one fake GigE camera can listen on 127.0.0.1 at a time; none may be left from before.
pkill -f arv-fake-gv-camera-0.8 2>/dev/null || true

# The Bayer and packed-grey unit tests need no Aravis: the README's `cargo test` runs them.
echo "-- unit tests (feature names, refusals' statuses) and integration tests against the fake cameras"
cargo test -q --features aravis --lib --test it -- genicam::
echo "-- clippy with the feature, tests and example included"
cargo clippy -q --features aravis --test it --example genicam --example bench_genicam -- -D warnings
echo "-- the genicam example (--fake) in the web UI, headless Chromium"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -d tests/browser/node_modules ] || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cargo build -q --example genicam --features aravis
MICROSCOPE_BIN="$PWD/target/debug/examples/genicam"
# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh --fake --idle-seconds 1
mkdir -p target/browser
node tests/browser/genicam.test.mjs "$URL" target/browser/genicam.png
