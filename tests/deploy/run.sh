#!/usr/bin/env bash
# Deployment suite (issue 14): the microscope example on a lab network.
#  - Behind real nginx (Debian's, pinned), configured by deploy/nginx.conf as shipped (only its
#    EDIT lines substituted), with TLS, under /lab/: every href of every TD resolves through
#    the proxy; labthings-fastapi's ThingClient, node-wot and ffmpeg work through it; the web
#    UI works through it in headless Chromium.
#  - Its own HTTPS (--self-signed) with HTTP/2: one page with 10 live streams and a websocket
#    (all updating, on one connection), beside the same page over plain HTTP/1.1.
#  - A mixed soak over HTTPS/HTTP/2 (Node's HTTP/2 client): no error; fds and threads flat.
#  - Discovery: python-zeroconf (PyPI, pinned) browses _wot._tcp on the loopback interface
#    only and follows the td record to valid TDs.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/python-venv.sh
source tests/support/python-venv.sh
NGINX_VERSION=1.22.1-9+deb12u11
if ! command -v nginx >/dev/null; then
  apt-get update -qq
  # The pinned version when the archive still has it, else the release's current one.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "nginx=$NGINX_VERSION" "nginx-common=$NGINX_VERSION" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
nginx -v
FFMPEG_VERSION=7:5.1.9-0+deb12u1
if ! command -v ffmpeg >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "ffmpeg=$FFMPEG_VERSION" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
VENV=bench/.venv
python_venv "$VENV" bench/requirements.txt
(cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

WORK=$(mktemp -d)
# The microscope nginx proxies to, on plain HTTP, trusting nginx's forwarded headers.
# shellcheck source=../support/start-microscope.sh
source tests/support/start-microscope.sh --config tests/deploy/proxied.json
BACKEND=$URL
# The microscope with its own HTTPS (a self-signed certificate, kept in its settings folder)
# and mDNS discovery, bound to 127.0.0.1: it announces on the loopback interface only.
SECURE_DIR=$(mktemp -d)
(cd "$SECURE_DIR" && exec "$MICROSCOPE_BIN" --port 0 --self-signed --discovery) \
  >"$WORK/secure.log" 2>&1 &
SECURE_PID=$!
cleanup() {
  stop_microscope
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  kill "$SECURE_PID" 2>/dev/null || true
  wait "$SECURE_PID" 2>/dev/null || true
  rm -rf "$WORK" "$SECURE_DIR"
}
trap cleanup EXIT
SECURE=
for _ in $(seq 1 100); do
  SECURE=$(grep -o 'serving on https://[0-9.:]*' "$WORK/secure.log" | sed -n 1p | sed 's/serving on //') || true
  [ -n "$SECURE" ] && break
  sleep 0.1
done
if [ -z "$SECURE" ]; then
  echo "the HTTPS microscope did not start:" >&2
  cat "$WORK/secure.log" >&2
  exit 1
fi
CERT=$SECURE_DIR/settings/tls/cert.pem
KEY=$SECURE_DIR/settings/tls/key.pem
grep -o 'SHA-256 fingerprint [0-9A-F:]*' "$WORK/secure.log"
# The fingerprint printed is the certificate's.
"$VENV/bin/python" - "$CERT" "$WORK/secure.log" <<'PY'
import hashlib, re, ssl, sys
der = ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())
printed = re.search(r"SHA-256 fingerprint ([0-9A-F:]+)", open(sys.argv[2]).read()).group(1)
actual = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
assert printed == actual, (printed, actual)
print("the printed fingerprint is the certificate's")
PY

# nginx, configured by deploy/nginx.conf with its EDIT lines filled in.
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HTTP_PORT=$(free_port)
TLS_PORT=$(free_port)
sed -e "s#server 127.0.0.1:5000;#server ${BACKEND#http://};#" \
    -e "s#listen 80;#listen 127.0.0.1:$HTTP_PORT;#" \
    -e "s#listen 443 ssl http2;#listen 127.0.0.1:$TLS_PORT ssl http2;#" \
    -e "s#server_name microscope.lab.example;#server_name localhost;#" \
    -e "s#/etc/ssl/certs/microscope.pem#$CERT#" \
    -e "s#/etc/ssl/private/microscope.key#$KEY#" \
    deploy/nginx.conf >"$WORK/labthings.conf"
cat >"$WORK/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fastcgi;
  uwsgi_temp_path $WORK/uwsgi;
  scgi_temp_path $WORK/scgi;
  include $WORK/labthings.conf;
}
NGINX
nginx -t -p "$WORK" -c "$WORK/nginx.conf"
nginx -p "$WORK" -c "$WORK/nginx.conf" &
PROXY=https://localhost:$TLS_PORT/lab
for _ in $(seq 1 50); do
  curl -sf --cacert "$CERT" "$PROXY/things/" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "nginx at $PROXY -> $BACKEND; the microscope's own HTTPS at $SECURE"

# Every href of every TD, through the proxy.
"$VENV/bin/python" tests/deploy/check_links.py "$PROXY" "$CERT"
# Plain HTTP to nginx is redirected to HTTPS.
redirect=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://localhost:$HTTP_PORT/lab/things/")
if [ "$redirect" != "301 https://localhost/lab/things/" ]; then
  echo "FAILED  plain HTTP to nginx: $redirect" >&2
  exit 1
fi
echo "ok      plain HTTP is redirected to HTTPS"
# labthings-fastapi's ThingClient, through the proxy (httpx trusts SSL_CERT_FILE).
SSL_CERT_FILE=$CERT "$VENV/bin/python" tests/interop/python_client.py "$PROXY"
# node-wot, through the proxy.
NODE_EXTRA_CA_CERTS=$CERT node tests/interop/node/node_wot.mjs "$PROXY" 2>&1 |
  grep -v 'unknown format "iri-reference"'
# ffmpeg decodes the stream through the proxy, checking the certificate.
ffmpeg -hide_banner -loglevel error -xerror -ca_file "$CERT" -tls_verify 1 \
  -i "$PROXY/camera/mjpeg_stream" -frames:v 30 -f null - &&
  echo "ok      ffmpeg decodes 30 frames through nginx"
# And the H.264 form (Annex B), through nginx and from the microscope's own HTTPS.
for base in "$PROXY" "$SECURE"; do
  ffmpeg -hide_banner -loglevel error -xerror -ca_file "$CERT" -tls_verify 1 \
    -f h264 -i "$base/camera/mjpeg_stream/h264" -frames:v 30 -f null - ||
    { echo "FAILED  ffmpeg on the H.264 form at $base" >&2; exit 1; }
done
echo "ok      ffmpeg decodes 30 H.264 frames through nginx and over the microscope's own HTTPS"
# The web UI through the proxy, and 10 live streams on one page (HTTP/2, then HTTP/1.1).
mkdir -p target/browser
node tests/browser/deploy.test.mjs "$PROXY" "$SECURE" "$BACKEND" target/browser
# A mixed soak over HTTPS with HTTP/2 against the microscope's own HTTPS (Node's HTTP/2
# client): no error, and its file descriptors and threads as many at the end as at the start.
node tests/deploy/soak.mjs "$SECURE" "$CERT" "$SECURE_PID" "${SOAK_SECONDS:-30}"
# Discovery on the loopback interface.
"$VENV/bin/python" tests/deploy/discover.py "${SECURE##*:}" "$CERT"
