#!/usr/bin/env bash
# Interop suite: real LabThings and WoT clients against the microscope example.
#  - labthings-fastapi 0.3.0's ThingClient (PyPI, pinned in bench/requirements.txt)
#  - the Eclipse node-wot consumer, @node-wot/core and binding-http 0.9.2 (npm, pinned)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=bench/.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r bench/requirements.txt

# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh

"$VENV/bin/python" tests/interop/python_client.py "$URL"

# The Eclipse node-wot consumer, pinned by tests/interop/node/package-lock.json.
(cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)
# node-wot's own TD schema check warns about a JSON Schema format it does not know; not ours.
node tests/interop/node/node_wot.mjs "$URL" 2>&1 | grep -v 'unknown format "iri-reference"'
