#!/usr/bin/env bash
# Interop suite: real LabThings and WoT clients against the microscope example.
#  - labthings-fastapi 0.3.0's ThingClient (PyPI, pinned in bench/requirements.txt)
#  - the Eclipse node-wot consumer, @node-wot/core and binding-http 0.9.2 (npm, pinned)
#  - the W3C WoT TD playground's validator and assertion tests (npm, pinned)
#  - clients generated from /openapi.json: openapi-python-client (PyPI, pinned in
#    tests/interop/codegen/requirements.txt) and openapi-typescript + openapi-fetch (npm, pinned)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/python-venv.sh
source tests/support/python-venv.sh
VENV=bench/.venv
python_venv "$VENV" bench/requirements.txt

# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh

"$VENV/bin/python" tests/interop/python_client.py "$URL"

WORK=$(mktemp -d)
trap 'stop_microscope; rm -rf "$WORK"' EXIT

# The Eclipse node-wot consumer, pinned by tests/interop/node/package-lock.json (with the TD
# playground and the TypeScript client's tools below).
(cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)
# node-wot's ajv warns once per read about a `format` it does not know: none may come from our
# TDs. (Its own TD schema uses "iri-reference", which its ajv does not know: not ours.)
node tests/interop/node/node_wot.mjs "$URL" 2>&1 | grep -v 'unknown format "iri-reference"' |
  tee "$WORK/node-wot.log"
if grep -q 'unknown format' "$WORK/node-wot.log"; then
  echo "node-wot warned about a format in our TDs" >&2
  exit 1
fi

# The W3C TD playground's validator and assertion tests, on every TD served.
node tests/interop/node/td_playground.mjs "$URL"

# Clients generated from the OpenAPI document, unmodified, each driven by a short script that
# reads and writes a property and checks an action's typed output. The generators' warnings
# about binary bodies (streams, snapshots, blobs: not JSON) are theirs to print, not failures.
CODEGEN=tests/interop/.venv-codegen
python_venv "$CODEGEN" tests/interop/codegen/requirements.txt
"$CODEGEN/bin/python" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
  "$URL/openapi.json" "$WORK/openapi.json"
"$CODEGEN/bin/openapi-python-client" generate --path "$WORK/openapi.json" --meta none \
  --output-path "$WORK/python/labthings_client" >"$WORK/python-generator.log" 2>&1 || {
  cat "$WORK/python-generator.log" >&2
  exit 1
}
"$CODEGEN/bin/python" tests/interop/codegen/openapi_python_client.py "$WORK/python" "$URL"

(cd tests/interop/node &&
  mkdir -p generated &&
  node_modules/.bin/openapi-typescript "$WORK/openapi.json" -o generated/labthings.d.ts --silent &&
  node_modules/.bin/tsc -p .)
node tests/interop/node/openapi_fetch.mjs "$URL"
