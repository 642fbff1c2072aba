#!/usr/bin/env bash
# Real stream consumers, unmodified: ffmpeg and GStreamer (Debian's packages) read the
# microscope example's MJPEG streams, and ffmpeg its H.264 form, and decode frames from them
# without an error.
set -euo pipefail
cd "$(dirname "$0")/../.."
FFMPEG_VERSION=7:5.1.9-0+deb12u1
if ! command -v ffmpeg >/dev/null; then
  apt-get update -qq
  # The pinned version when the archive still has it, else the release's current one.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "ffmpeg=$FFMPEG_VERSION" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi
# sed, not head: head exits after one line and the writer, still writing, dies of SIGPIPE (141).
ffmpeg -hide_banner -version | sed -n 1p
# GStreamer: souphttpsrc ! multipartdemux ! jpegdec, the usual pipeline for an MJPEG camera.
GST_TOOLS=1.22.0-2+deb12u1 GST_GOOD=1.22.0-5+deb12u4 GST_BASE=1.22.0-3+deb12u7
if ! command -v gst-launch-1.0 >/dev/null || ! gst-inspect-1.0 souphttpsrc >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "gstreamer1.0-tools=$GST_TOOLS" "gstreamer1.0-plugins-good=$GST_GOOD" \
    "gstreamer1.0-plugins-base=$GST_BASE" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-base >/dev/null
fi
gst-launch-1.0 --version | sed -n 1p

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

# The H.264 form (raw Annex B): ffmpeg decodes 60 frames of the camera's size without an error.
LOG=$(mktemp)
SIZES=$(timeout 60 ffmpeg -hide_banner -nostdin -loglevel error -xerror -f h264 \
  -i "$URL/camera/mjpeg_stream/h264" -frames:v "$FRAMES" -f framemd5 - 2>"$LOG" | grep -v '^#' |
  awk -F', *' '{print $5}' | sort | uniq -c) || {
  echo "ffmpeg failed on the H.264 stream:" >&2
  cat "$LOG" >&2
  exit 1
}
if [ -s "$LOG" ]; then
  echo "ffmpeg reported errors on the H.264 stream:" >&2
  cat "$LOG" >&2
  exit 1
fi
# One line: 60 frames, each of 640x480 in YUV 4:2:0 (460800 bytes).
if [ "$(echo "$SIZES" | awk '{$1=$1};1')" != "$FRAMES 460800" ]; then
  echo "ffmpeg decoded from the H.264 stream (count, frame bytes): $SIZES" >&2
  exit 1
fi
FFPROBE=$(timeout 30 ffprobe -v error -f h264 -select_streams v:0 -show_entries stream=codec_name,width,height \
  -of csv=p=0 -read_intervals "%+#5" "$URL/camera/mjpeg_stream/h264")
if [ "$FFPROBE" != "h264,640,480" ]; then
  echo "ffprobe saw $FFPROBE in the H.264 stream, not h264,640,480" >&2
  exit 1
fi
echo "ffmpeg decoded $FRAMES frames of 640x480 from the H.264 stream without an error"
rm -f "$LOG"

# GStreamer decodes each frame and writes it as a PNG; `identity eos-after` ends the pipeline
# after the wanted number of frames. Any error or warning it prints fails the suite.
for stream in mjpeg_stream lores_mjpeg_stream; do
  DIR=$(mktemp -d)
  LOG=$(mktemp)
  timeout 60 gst-launch-1.0 -q souphttpsrc location="$URL/camera/$stream" is-live=true \
    ! multipartdemux ! jpegdec ! identity eos-after=$((FRAMES + 1)) ! videoconvert ! pngenc \
    ! multifilesink location="$DIR/frame-%05d.png" >"$LOG" 2>&1 || {
    echo "GStreamer failed on $stream:" >&2
    cat "$LOG" >&2
    exit 1
  }
  if grep -qiE 'error|warn' "$LOG"; then
    echo "GStreamer reported problems on $stream:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  DECODED=$(find "$DIR" -name 'frame-*.png' -size +0 | wc -l)
  if [ "$DECODED" -ne "$FRAMES" ]; then
    echo "GStreamer decoded $DECODED of $FRAMES frames from $stream" >&2
    exit 1
  fi
  echo "GStreamer decoded $DECODED frames from $stream without an error"
  rm -rf "$DIR" "$LOG"
done
