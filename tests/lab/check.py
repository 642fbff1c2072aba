"""A lab of many instruments, end to end, with the real directory and real consumers.

Two microscope servers register with Eclipse Thingweb's domus-tdd-api (started after them),
node-wot 0.9.2 finds them through it, the lab view shows both in headless Chromium, a clean
stop removes one server's entries, a restart keeps its ids, and a SIGKILL leaves the other's
entries to expire after their ttl.

Usage: python check.py MICROSCOPE_BINARY VENV_BIN OUT_DIR   (run by tests/lab/run.sh)
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

MICROSCOPE, VENV_BIN, OUT = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# Entries are registered again every half ttl. domus-tdd-api 1.0.2 briefly drops an entry while
# it replaces it (and fails listings meanwhile), so a short ttl makes that race frequent.
TTL = 20
failures = []


def check(name, condition, detail=""):
    print(f"{'ok    ' if condition else 'FAILED'}  {name}" + (f"\n        {detail}" if detail and not condition else ""))
    if not condition:
        failures.append(name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    """(status, body as JSON or text); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def eventually(probe, seconds):
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


class Microscope:
    def __init__(self, name, port, args, folder=None):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.folder = folder or Path(tempfile.mkdtemp(prefix=f"lab-{name}-"))
        self.args = args
        self.start()

    def start(self):
        self.log = open(self.folder / "server.log", "a")
        self.process = subprocess.Popen(
            [MICROSCOPE, "--port", str(self.port), *self.args],
            cwd=self.folder, stderr=self.log, stdout=self.log,
            env={**os.environ, "RUST_LOG": "info"})
        if not eventually(lambda: get(f"{self.url}/.well-known/wot")[0] == 200, 30):
            sys.exit(f"{self.name} did not start:\n{self.text()}")

    def text(self):
        return (self.folder / "server.log").read_text(errors="replace")

    def ids(self):
        _, tds = get(f"{self.url}/thing_descriptions/")
        return sorted(td["id"] for td in tds.values())

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        self.process.wait(timeout=15)
        self.log.close()


def start_directory(sparql_port, port, work):
    """rdflib-endpoint's in-memory SPARQL store, and domus-tdd-api on it."""
    store = subprocess.Popen(
        [VENV_BIN / "rdflib-endpoint", "serve", "--host", "127.0.0.1", "--port", str(sparql_port), "--enable-update"],
        cwd=work, stdout=open(work / "sparql.log", "w"), stderr=subprocess.STDOUT)
    (work / "config.toml").write_text(
        f'TD_REPO_URL = "http://127.0.0.1:{port}"\n'
        f'SPARQLENDPOINT_URL = "http://127.0.0.1:{sparql_port}/"\n'
        "OVERWRITE_DISCOVERY = true\n"
        "PERIOD_CLEAR_EXPIRE_TD = 1\n")
    if not eventually(lambda: get(f"http://127.0.0.1:{sparql_port}/?query=ASK%7B%7D")[0] == 200, 60):
        sys.exit("the SPARQL store did not start:\n" + (work / "sparql.log").read_text())
    # The TD 1.0 context, which our TDs name and domus-tdd-api does not ship: the TD 1.1
    # context it ships defines the same terms (see offline-contexts.cjs).
    package = subprocess.check_output(
        [VENV_BIN / "python", "-c", "import tdd, os; print(os.path.dirname(tdd.__file__))"], text=True).strip()
    contexts = {"https://www.w3.org/2019/wot/td/v1": str(Path(package) / "data" / "fixed-ctx.json")}
    directory = subprocess.Popen(
        [VENV_BIN / "domus-tdd-api", "run", "-h", "127.0.0.1", "-p", str(port)],
        cwd=work, stdout=open(work / "directory.log", "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
             "NODE_OPTIONS": f"--require {HERE / 'offline-contexts.cjs'}",
             "OFFLINE_CONTEXTS": json.dumps(contexts)})
    if not eventually(lambda: get(f"http://127.0.0.1:{port}/")[0] == 200, 60):
        sys.exit("the directory did not start:\n" + (work / "directory.log").read_text())
    return [store, directory]


def check_nginx(a, b, work):
    """deploy/nginx-lab.conf as shipped (its EDIT lines filled in): one name in front of both."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    key, cert = work / "lab.key", work / "lab.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    http_port, tls_port = free_port(), free_port()
    conf = (ROOT / "deploy" / "nginx-lab.conf").read_text()
    for old, new in [("server 10.0.0.11:5000;", f"server 127.0.0.1:{a.port};"),
                     ("server 10.0.0.12:5000;", f"server 127.0.0.1:{b.port};"),
                     ("listen 80;", f"listen 127.0.0.1:{http_port};"),
                     ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl http2;"),
                     ("server_name lab.example;", "server_name localhost;"),
                     ("/etc/ssl/certs/lab.pem", str(cert)), ("/etc/ssl/private/lab.key", str(key))]:
        assert old in conf, old
        conf = conf.replace(old, new)
    (work / "lab.conf").write_text(conf)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / folder).mkdir(exist_ok=True)
    (work / "nginx.conf").write_text(f"""daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  include {work}/lab.conf;
}}
""")
    proxy = subprocess.Popen([nginx, "-p", str(work), "-c", str(work / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import ssl
    context = ssl.create_default_context(cafile=str(cert))
    front = f"https://localhost:{tls_port}"

    def through(path):
        try:
            with urllib.request.urlopen(f"{front}{path}", context=context, timeout=5) as response:
                body = response.read()
                json_body = "json" in response.headers.get("content-type", "")
                return response.status, response.url, json.loads(body) if json_body else body.decode()
        except (urllib.error.URLError, OSError, ValueError) as error:
            return 0, None, str(error)

    try:
        ready = eventually(lambda: through("/lab/microscope/.well-known/wot")[0] == 200, 10)
        check("nginx (deploy/nginx-lab.conf) serves both instruments under one name", bool(ready),
              (work / "nginx-error.log").read_text() if (work / "nginx-error.log").exists() else "")
        for name, server in (("microscope", a), ("stage", b)):
            status, _, wot = through(f"/lab/{name}/.well-known/wot")
            check(f"/lab/{name}/ is that instrument, its links through nginx",
                  status == 200 and wot.get("base") == f"{front}/lab/{name}/" and wot.get("id") == get(f"{server.url}/.well-known/wot")[1]["id"],
                  f"{status} {wot}")
        try:
            with urllib.request.urlopen(f"{front}/lab/stage/camera/mjpeg_stream", context=context, timeout=5) as stream:
                head = stream.read(4096)
            live = b"image/jpeg" in head and b"\xff\xd8" in head
        except (urllib.error.URLError, OSError) as error:
            live, head = False, str(error)
        check("a live stream comes through nginx", live, head[:200])
        status, url, page = through("/lab/")
        check("/lab/ leads to the lab view", status == 200 and url == f"{front}/lab/microscope/lab_view/"
              and "lab.js" in page, f"{status} {url}")
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lab-directory-"))
    pa, pb, sparql_port, directory_port = free_port(), free_port(), free_port(), free_port()
    directory = f"http://127.0.0.1:{directory_port}"
    common = ["--directory", directory, "--directory-ttl", str(TTL)]
    things = json.loads((HERE.parent / "browser" / "microscope.json").read_text())["things"]
    # Both trust nginx (deploy/nginx-lab.conf, at the end); B lets A's pages read it (CORS).
    config_a, config_b = work / "a.json", work / "b.json"
    config_a.write_text(json.dumps({"things": things, "trusted_proxies": ["127.0.0.1"]}))
    config_b.write_text(json.dumps({
        "things": things,
        "allow_origins": [f"http://127.0.0.1:{pa}"],
        "trusted_proxies": ["127.0.0.1"],
    }))
    a = Microscope("a", pa, [*common, "--config", str(config_a), "--lab-server", f"http://127.0.0.1:{pb}/"])
    b = Microscope("b", pb, [*common, "--config", str(config_b)])
    processes = []
    try:
        ids_a, ids_b = a.ids(), b.ids()
        check("every Thing has a urn:uuid id, and the two servers share none",
              all(i.startswith("urn:uuid:") for i in ids_a + ids_b) and not set(ids_a) & set(ids_b),
              f"{ids_a} {ids_b}")
        _, wot = get(f"{a.url}/.well-known/wot")
        check("the server's own TD has an id too", str(wot.get("id", "")).startswith("urn:uuid:"), wot.get("id"))

        # Both serve while the directory is down, and all along while it comes up.
        outages = []
        watching = True

        def watch():
            while watching:
                for server in (a, b):
                    if get(f"{server.url}/stage/position", timeout=2)[0] != 200:
                        outages.append(server.name)
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        time.sleep(2)
        metrics = get(f"{a.url}/metrics")[1]
        check("with the directory down, /metrics says so",
              f'labthings_directory_up{{directory="{directory}"}} 0' in metrics)
        processes = start_directory(sparql_port, directory_port, work)

        def listed():
            status, tds = get(f"{directory}/things")
            if status != 200:
                return None
            found = {td["id"]: td for td in tds}
            return found if all(i in found for i in ids_a + ids_b) else None

        found = eventually(listed, 60)
        watching = False
        watcher.join()
        check("a directory started after the servers lists all four Things", bool(found),
              get(f"{directory}/things")[1])
        check("the servers served all along", not outages, f"unanswered polls: {outages}")
        if found:
            td = found[ids_a[0]]
            check("each entry has its expiry", all("expires" in found[i].get("registration", {}) for i in ids_a + ids_b))
            hrefs = [f["href"] for p in td["properties"].values() for f in p["forms"]]
            hrefs += [link["href"] for link in td.get("links", [])]
            wrong = [h for h in hrefs if not h.split("://", 1)[-1].startswith(f"127.0.0.1:{pa}/")]
            check("links in the directory are absolute, to the server", td["base"] == f"{a.url}/" and not wrong,
                  f"{td['base']} {wrong}")
        log_a = a.text()
        check("the outage is logged once, and the recovery once",
              log_a.count("cannot register with the directory") == 1 and log_a.count("the directory answers again") == 1,
              "\n".join(line for line in log_a.splitlines() if "directory" in line))
        metrics = get(f"{a.url}/metrics")[1]
        check("/metrics shows the registration",
              f'labthings_directory_up{{directory="{directory}"}} 1' in metrics
              and f'labthings_directory_registered_things{{directory="{directory}"}} 2' in metrics)

        node = subprocess.run(["node", ROOT / "tests/interop/node/explore_directory.mjs",
                               f"{a.url}/lab_view/directory", *ids_a, *ids_b],
                              capture_output=True, text=True, timeout=120)
        print("\n".join(line for line in node.stdout.splitlines()))
        check("node-wot 0.9.2 exploreDirectory finds the Things and reads a property", node.returncode == 0,
              "\n".join(line for line in node.stderr.splitlines() if "unknown format" not in line)[-2000:])

        browser = subprocess.run(["node", ROOT / "tests/browser/lab.test.mjs", f"{a.url}/lab_view/",
                                  f"{b.url}/", str(OUT / "lab.png")], capture_output=True, text=True, timeout=180)
        print(browser.stdout, browser.stderr[-2000:])
        check("the lab page shows both servers' Things with live streams", browser.returncode == 0)

        check_nginx(a, b, work)

        b.stop()
        gone = eventually(lambda: all(get(f"{directory}/things/{i}")[0] == 404 for i in ids_b), 10)
        check("a clean stop deletes that server's entries", gone,
              [get(f"{directory}/things/{i}")[0] for i in ids_b])
        # (Within a few seconds: an entry being registered again is briefly missing in domus.)
        check("and only that server's",
              eventually(lambda: all(get(f"{directory}/things/{i}")[0] == 200 for i in ids_a), 5))
        check("the stopped server logged the removal", "removed 2 Things from the directory" in b.text())

        b.start()
        check("ids are the same after a restart", b.ids() == ids_b, f"{b.ids()} != {ids_b}")
        back = eventually(lambda: all(get(f"{directory}/things/{i}")[0] == 200 for i in ids_b), 30)
        check("the restarted server registers again", back)

        a.stop(signal.SIGKILL)
        kept = eventually(lambda: all(get(f"{directory}/things/{i}")[0] == 200 for i in ids_a), 3)
        check("a SIGKILL leaves the entries in the directory", kept)
        started = time.monotonic()
        expired = eventually(lambda: all(get(f"{directory}/things/{i}")[0] == 404 for i in ids_a), TTL + 15)
        check(f"which expire after their ttl ({TTL} s; gone {time.monotonic() - started:.1f} s after the kill)", expired)
        check("the other server's entries stay",
              eventually(lambda: all(get(f"{directory}/things/{i}")[0] == 200 for i in ids_b), 5))
        b.stop()
    finally:
        for server in (a, b):
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if failures:
            for name, text in (("directory", (work / "directory.log").read_text(errors="replace") if (work / "directory.log").exists() else ""),
                               ("a", a.text()), ("b", b.text())):
                print(f"--- {name} log (last lines)")
                print("\n".join(text.splitlines()[-40:]))
        for folder in (work, a.folder, b.folder):
            shutil.rmtree(folder, ignore_errors=True)
    total = "passed" if not failures else f"{len(failures)} failed"
    print(f"lab: {total}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
