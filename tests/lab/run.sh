#!/usr/bin/env bash
# Lab suite: a lab of many instruments. Two microscope servers register with a real W3C WoT
# Thing Description Directory (Eclipse Thingweb's domus-tdd-api 1.0.2 on rdflib-endpoint 0.6.3's
# in-memory SPARQL store, pinned in requirements.txt, on 127.0.0.1 only), node-wot 0.9.2 finds
# them through it, and the lab view shows both in headless Chromium. Then a clean stop, a
# restart and a SIGKILL (tests/lab/check.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/python-venv.sh
source tests/support/python-venv.sh
python_venv tests/lab/.venv tests/lab/requirements.txt
# domus-tdd-api runs Node (jsonld.js) for each TD it stores; the node-wot and browser suites
# pin their packages.
# nginx for deploy/nginx-lab.conf (the deploy suite's pinned version), openssl for its
# throwaway certificate.
NGINX_VERSION=1.22.1-9+deb12u11
if ! command -v nginx >/dev/null || ! command -v openssl >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "nginx=$NGINX_VERSION" "nginx-common=$NGINX_VERSION" openssl >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx openssl >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cargo build -q --example microscope
mkdir -p target/lab
tests/lab/.venv/bin/python tests/lab/check.py "$PWD/target/debug/examples/microscope" \
  "$PWD/tests/lab/.venv/bin" "$PWD/target/lab"
