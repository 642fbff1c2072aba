#!/usr/bin/env bash
# Contract suite: the microscope example's /openapi.json is a valid OpenAPI document
# (openapi-spec-validator), and the server keeps to it under schemathesis' generated requests:
# no 5xx, only documented statuses, documented content types, bodies matching their schemas.
# Two passes: the default configuration (open), then with access control on and a read-only
# token, where every write is refused and the 401/403s must be documented too.
# Both tools come from PyPI, pinned (with every dependency) in tests/contract/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/python-venv.sh
source tests/support/python-venv.sh
VENV=tests/contract/.venv
python_venv "$VENV" tests/contract/requirements.txt

WORK=$(mktemp -d)
# Validates the served document, then runs schemathesis against it; extra arguments go to
# schemathesis. The endless streams cannot be fetched whole: live MJPEG (operations
# `*_mjpeg_stream`), its H.264 forms (`*_h264`, `*_h264_units`) and Server-Sent Events
# (`*_subscribe_*`, `*_observe_*`); everything else is
# in. (One exclusion option: schemathesis 4 excludes only what matches all the options given.)
# The one-call action routes (`*_run_*`) wait for the action to finish, and the stage's moves
# queue on one lock (a `home` takes 2 s): fuzzed by the hundred they would queue for many
# minutes, so they get the coverage phase (boundary and typical values, every documented status)
# in a pass of their own. Recordings (`*_record_*`) run for seconds to a day and write video
# files: fuzzed, they would fill the disk; tests/data covers them.
# hypothesis' example database is off so that every run starts the same way on a clean clone.
# One worker: with more, hypothesis (reading lambda sources from threads) hit CPython 3.11's
# "AST constructor recursion depth mismatch" error here.
contract() {
  "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$URL/openapi.json" "$WORK/openapi.json"
  "$VENV/bin/openapi-spec-validator" "$WORK/openapi.json"
  "$VENV/bin/schemathesis" run "$URL/openapi.json" \
    --url "$URL" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-operation-id-regex "${CONTRACT_EXCLUDE:-(_mjpeg_stream\$|_h264\$|_h264_units\$|_subscribe_|_observe_|_run_|_record_)}" \
    --request-timeout 65 \
    --generation-database none \
    --seed "${CONTRACT_SEED:-1}" \
    --workers 1 \
    --no-color \
    "$@"
}

echo "-- the default configuration"
# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh
contract --max-examples "${CONTRACT_EXAMPLES:-50}"
CONTRACT_EXCLUDE='^(?!.*_run_)|_record_' contract --phases coverage --max-examples 5
stop_microscope

echo "-- access control on, a read-only token"
cat >"$WORK/config.json" <<'JSON'
{
  "things": {
    "stage": "simulated_stage",
    "camera": {"class": "simulated_camera", "kwargs": {"stage": true}}
  },
  "auth": {
    "tokens": [
      {"token": "contract-writer-token", "role": "read-write"},
      {"token": "contract-reader-token", "role": "read-only"}
    ]
  }
}
JSON
# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh --config "$WORK/config.json"
contract --max-examples "${CONTRACT_EXAMPLES_AUTH:-10}" --header "Authorization: Bearer contract-reader-token"
rm -rf "$WORK"
