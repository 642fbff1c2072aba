#!/usr/bin/env bash
# Data suite (issue 16): what the microscope keeps, read by the tools scientists use: numpy
# and tifffile (arrays), Pillow (a capture's state), ffprobe and OpenCV (recordings), all
# pinned; and a recording that runs out of room.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/python-venv.sh
source tests/support/python-venv.sh
FFMPEG_VERSION=7:5.1.9-0+deb12u1
if ! command -v ffprobe >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "ffmpeg=$FFMPEG_VERSION" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi
VENV=tests/data/.venv
python_venv "$VENV" tests/data/requirements.txt

# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh
"$VENV/bin/python" tests/data/check.py "$URL" "$MICROSCOPE_DIR/data"
stop_microscope

# Out of room: a 2 MiB file size limit (SIGXFSZ ignored, so a write past it fails as on a
# full disk) for a second microscope.
LIMITED_DIR=$(mktemp -d)
(cd "$LIMITED_DIR" && trap '' XFSZ && ulimit -f 2048 && exec "$MICROSCOPE_BIN" --port 0) \
  >"$LIMITED_DIR/log" 2>&1 &
LIMITED_PID=$!
trap 'kill "$LIMITED_PID" 2>/dev/null || true; wait "$LIMITED_PID" 2>/dev/null || true; rm -rf "$LIMITED_DIR"' EXIT
LIMITED=
for _ in $(seq 1 100); do
  LIMITED=$(grep -o 'serving on http://[0-9.:]*' "$LIMITED_DIR/log" | sed -n 1p | sed 's/serving on //') || true
  [ -n "$LIMITED" ] && break
  sleep 0.1
done
[ -n "$LIMITED" ] || { cat "$LIMITED_DIR/log" >&2; exit 1; }
"$VENV/bin/python" tests/data/write_error.py "$LIMITED" "$LIMITED_DIR/data"
