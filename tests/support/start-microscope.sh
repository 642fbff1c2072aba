# Sourced by the interop and browser suites: builds and starts the microscope example on a free
# port (extra arguments are passed to it), sets URL and MICROSCOPE_PID, and stops it when the
# calling script exits. It runs in a folder of its own, where its settings (kept in ./settings
# by default) start empty and go away with the run. A MICROSCOPE_BIN set beforehand (a release
# build, say) is run instead of the debug build.
if [ -z "${MICROSCOPE_BIN:-}" ]; then
  cargo build -q --example microscope
  MICROSCOPE_BIN="$PWD/target/debug/examples/microscope"
fi
MICROSCOPE_LOG=$(mktemp)
MICROSCOPE_DIR=$(mktemp -d)
MICROSCOPE_ARGS=()
previous=
for arg in "$@"; do
  # Paths given relative to the project (a --config file) still point there.
  if [ "$previous" = "--config" ] && [ "${arg#/}" = "$arg" ]; then
    arg="$PWD/$arg"
  fi
  MICROSCOPE_ARGS+=("$arg")
  previous=$arg
done
(cd "$MICROSCOPE_DIR" && exec "$MICROSCOPE_BIN" --port 0 "${MICROSCOPE_ARGS[@]}") >"$MICROSCOPE_LOG" 2>&1 &
MICROSCOPE_PID=$!
# At exit: stop it and wait until it has (it saves its settings in its folder as it stops),
# then remove its files.
stop_microscope() {
  kill "$MICROSCOPE_PID" 2>/dev/null || true
  wait "$MICROSCOPE_PID" 2>/dev/null || true
  rm -rf "$MICROSCOPE_LOG" "$MICROSCOPE_DIR" || true
}
trap 'stop_microscope' EXIT
URL=
for _ in $(seq 1 100); do
  URL=$(grep -o 'serving on https\?://[0-9.:]*' "$MICROSCOPE_LOG" | head -n 1 | sed 's/serving on //') || true
  [ -n "$URL" ] && break
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "the microscope example did not start:" >&2
  cat "$MICROSCOPE_LOG" >&2
  exit 1
fi
echo "microscope example at $URL"
