#!/usr/bin/env bash
# Real stream consumers, unmodified: ffmpeg (Debian's package) reads the microscope example's
# MJPEG stream and decodes frames from it without an error.
set -euo pipefail
cd "$(dirname "$0")/../.."
FFMPEG_VERSION=7:5.1.9-0+deb12u1
if ! command -v ffmpeg >/dev/null; then
  apt-get update -qq
  # The pinned version when the archive still has it, else the release's current one.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "ffmpeg=$FFMPEG_VERSION" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi
ffmpeg -hide_banner -version | head -n 1

# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh

FRAMES=60
for stream in mjpeg_stream lores_mjpeg_stream; do
  LOG=$(mktemp)
  # -xerror: stop with a failing status on the first decoding error.
  timeout 60 ffmpeg -hide_banner -nostdin -loglevel error -xerror \
    -f mpjpeg -i "$URL/camera/$stream" -frames:v "$FRAMES" -f null - 2>"$LOG" || {
    echo "ffmpeg failed on $stream:" >&2
    cat "$LOG" >&2
    exit 1
  }
  if [ -s "$LOG" ]; then
    echo "ffmpeg reported errors on $stream:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  # Count what it decoded: one line per frame from the framemd5 muxer.
  DECODED=$(timeout 60 ffmpeg -hide_banner -nostdin -loglevel error -f mpjpeg -i "$URL/camera/$stream" \
    -frames:v "$FRAMES" -f framemd5 - | grep -vc '^#')
  if [ "$DECODED" -ne "$FRAMES" ]; then
    echo "ffmpeg decoded $DECODED of $FRAMES frames from $stream" >&2
    exit 1
  fi
  echo "ffmpeg decoded $DECODED frames from $stream without an error"
  rm -f "$LOG"
done
