"""python-zeroconf (PyPI, pinned in bench/requirements.txt) finds the microscope over mDNS.

Usage: discover.py PORT CA.pem

It browses `_wot._tcp.local.` on the loopback interface only (nothing is sent on any other
interface), takes the instance whose port is PORT, and follows its `td` TXT record (with its
`scheme`) to the server's /.well-known/wot Thing Description and from there to each Thing's.
"""

import ssl
import sys
import time
import urllib.parse

import httpx
from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

PORT, CA = int(sys.argv[1]), sys.argv[2]
SERVICE = "_wot._tcp.local."


class Found(ServiceListener):
    def __init__(self):
        self.names = set()

    def add_service(self, zc, type_, name):
        self.names.add(name)

    def update_service(self, zc, type_, name):
        self.names.add(name)

    def remove_service(self, zc, type_, name):
        pass


zeroconf = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
try:
    listener = Found()
    ServiceBrowser(zeroconf, SERVICE, listener)
    info = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and info is None:
        for name in list(listener.names):
            candidate = zeroconf.get_service_info(SERVICE, name, timeout=2000)
            if candidate and candidate.port == PORT:
                info = candidate
        time.sleep(0.2)
    assert info is not None, f"no {SERVICE} instance on port {PORT} (saw {listener.names})"
    txt = {key.decode(): (value or b"").decode() for key, value in info.properties.items()}
    addresses = info.parsed_addresses()
    print(f"found {info.name} at {addresses} port {info.port}, TXT {txt}")
    assert addresses == ["127.0.0.1"], f"announced on {addresses}, not on loopback only"
    assert txt.get("type") == "Thing", txt
    assert txt.get("scheme") == "https", txt
    url = f"{txt['scheme']}://127.0.0.1:{info.port}{txt['td']}"
finally:
    zeroconf.close()

http = httpx.Client(verify=ssl.create_default_context(cafile=CA), timeout=10)
td = http.get(url).raise_for_status().json()
assert td["links"], td
for link in td["links"]:
    thing = http.get(urllib.parse.urljoin(td["base"], link["href"])).raise_for_status().json()
    assert thing["title"] == link["title"], (thing["title"], link)
    assert thing.get("properties") or thing.get("actions"), thing["title"]
print(f"discovery: {url} leads to {len(td['links'])} Thing Descriptions")
