#!/usr/bin/env bash
# V4L2 suite (issue 17): the webcam example, unmodified, against a simulated V4L2 device
# (tests/v4l2/fakecam.c, built here with gcc and preloaded in front of libc: it answers the V4L2
# ioctls, mmap and poll for one device path). Checks format listing, MJPEG passthrough byte for
# byte, YUYV through the pipeline, controls with their ranges, streaming only while watched, an
# unplug and replug, and a clean stop. Pillow and numpy come from the data suite's pinned list.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/python-venv.sh
source tests/support/python-venv.sh
VENV=tests/data/.venv
python_venv "$VENV" tests/data/requirements.txt
[ -f /usr/include/linux/videodev2.h ] || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-libc-dev >/dev/null
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$WORK/fakecam.so" tests/v4l2/fakecam.c -ldl -lpthread
cargo build -q --example webcam --features v4l2
"$VENV/bin/python" tests/v4l2/check.py "$PWD/target/debug/examples/webcam" "$WORK"
