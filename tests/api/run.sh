#!/usr/bin/env bash
# The public API, checked: rustdoc's JSON output (through RUSTC_BOOTSTRAP, as the machine has
# the stable toolchain only) lists every public item with its signature; the list must equal
# tests/api/public-api.txt, so that every change to the API is a reviewed diff. Also fails
# when a public signature names another crate's type that is not part of the API on purpose,
# or when a `#[doc(hidden)]` item sits anywhere but the one `__private` module.
#   UPDATE=1 tests/api/run.sh   rewrites the snapshot after an intended change.
set -euo pipefail
cd "$(dirname "$0")/../.."

hidden=$(grep -rn 'doc(hidden)' --include='*.rs' src | grep -v '^src/lib.rs:' || true)
if [ -n "$hidden" ]; then
    echo "hidden public items outside __private (move them there, or make them private):"
    echo "$hidden"
    exit 1
fi

# Every feature but the platform's own (v4l2 is Linux-only, and so is CI).
RUSTC_BOOTSTRAP=1 cargo rustdoc --quiet --lib --all-features -- -Z unstable-options --output-format json
python3 tests/api/public_api.py target/doc/labthings.json > target/public-api.txt
if [ "${UPDATE:-}" = 1 ]; then
    cp target/public-api.txt tests/api/public-api.txt
    echo "public API snapshot updated: $(wc -l < tests/api/public-api.txt) lines"
    exit 0
fi
if ! diff -u tests/api/public-api.txt target/public-api.txt; then
    echo "The public API changed (diff above: - snapshot, + now). If intended, run"
    echo "UPDATE=1 tests/api/run.sh and commit tests/api/public-api.txt with the change."
    exit 1
fi
echo "public API: $(wc -l < tests/api/public-api.txt) items, as in the snapshot"
