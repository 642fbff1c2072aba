# Sourced by .ci/run and the GenICam scripts: the `aravis` feature links Aravis 0.8 (pkg-config
# finds it; its .pc file requires libusb's), and the tests use Aravis's fake GigE camera
# (aravis-tools) and its command-line tool (aravis-tools-cli). Debian 12's packages, pinned.
if ! pkg-config --exists aravis-0.8 || ! command -v arv-fake-gv-camera-0.8 >/dev/null ||
  ! command -v arv-tool-0.8 >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    pkg-config libaravis-dev=0.8.26-1 libusb-1.0-0-dev=2:1.0.26-1 \
    aravis-tools=0.8.26-1 aravis-tools-cli=0.8.26-1 >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      pkg-config libaravis-dev libusb-1.0-0-dev aravis-tools aravis-tools-cli >/dev/null
fi
