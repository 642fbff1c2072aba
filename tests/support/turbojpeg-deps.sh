# Sourced by the scripts that build with the `turbojpeg` feature: the turbojpeg crate builds
# libjpeg-turbo 3 from source (Debian's is 2.1.5, too old for its TurboJPEG 3 API), which
# needs cmake and nasm. Installs them from Debian (pinned, else the release's current ones).
if ! command -v cmake >/dev/null || ! command -v nasm >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    cmake=3.25.1-1 nasm=2.16.01-1 >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake nasm >/dev/null
fi
