# Sourced by the interop and browser suites: builds and starts the microscope example on a free
# port (extra arguments are passed to it), sets URL, and stops it when the calling script exits.
cargo build -q --example microscope
MICROSCOPE_LOG=$(mktemp)
target/debug/examples/microscope --port 0 "$@" >"$MICROSCOPE_LOG" 2>&1 &
MICROSCOPE_PID=$!
trap 'kill $MICROSCOPE_PID 2>/dev/null || true; rm -f "$MICROSCOPE_LOG"' EXIT
URL=
for _ in $(seq 1 100); do
  URL=$(grep -o 'serving on http://[0-9.:]*' "$MICROSCOPE_LOG" | head -n 1 | sed 's/serving on //') || true
  [ -n "$URL" ] && break
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "the microscope example did not start:" >&2
  cat "$MICROSCOPE_LOG" >&2
  exit 1
fi
echo "microscope example at $URL"
