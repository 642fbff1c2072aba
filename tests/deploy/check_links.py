"""Every href of every Thing Description, fetched through the reverse proxy.

Usage: check_links.py https://localhost:PORT/lab CA.pem

The server sits behind nginx under /lab/ on HTTPS; it must write every link (TD `base`, form
hrefs, websocket hrefs, invocation `Location`s and `href`s, blob links, /.well-known/wot's links)
as the client sees it, so that each one resolves through the proxy. HTTP links are fetched with
GET (headers only: streams never end), a POST-only form's link must answer 405 with an
`Allow` header (routed, another method); URI templates (`{id}`) take a real invocation's id;
websocket links are opened.
"""

import ssl
import sys
import urllib.parse

import httpx
from websockets.sync.client import connect

PROXY, CA = sys.argv[1].rstrip("/"), sys.argv[2]
http = httpx.Client(verify=ssl.create_default_context(cafile=CA), timeout=20)
context = ssl.create_default_context(cafile=CA)
failures = []
checked = 0


def fail(message):
    failures.append(message)
    print(f"FAILED  {message}")


def resolves(url, why):
    """GET (headers only) or a websocket handshake; anything under 400 resolves."""
    global checked
    checked += 1
    if not url.startswith((PROXY + "/", PROXY.replace("https://", "wss://", 1) + "/")):
        fail(f"{why}: {url} is not under the proxy's {PROXY}/")
        return
    if url.startswith("wss://"):
        try:
            with connect(url, ssl=context, open_timeout=10):
                pass
        except Exception as error:  # noqa: BLE001 - reported, not raised
            fail(f"{why}: websocket {url}: {error}")
        return
    with http.stream("GET", url) as response:
        routed_for_another_method = response.status_code == 405 and "allow" in response.headers
        if response.status_code >= 400 and not routed_for_another_method:
            fail(f"{why}: GET {url} answered {response.status_code}")


def forms_of(td):
    yield "thing", td.get("forms", [])
    for kind in ("properties", "actions", "events"):
        for name, affordance in td.get(kind, {}).items():
            yield f"{kind}.{name}", affordance.get("forms", [])


# An invocation: its Location and href, and a blob output's link.
response = http.post(f"{PROXY}/camera/capture?wait=20", json={})
location = response.headers.get("location", "")
resolves(location, "capture's Location")
invocation = response.json()
resolves(invocation["href"], "capture's href")
for link in invocation.get("links", []):
    resolves(urllib.parse.urljoin(invocation["href"], link["href"]), f"invocation link {link['rel']}")
blob = invocation["output"]["href"]
resolves(blob, "the captured image's blob link")
image = http.get(blob)
if image.headers.get("content-type") != "image/jpeg" or not image.content.startswith(b"\xff\xd8"):
    fail(f"the blob link {blob} did not give a JPEG")


tds = http.get(f"{PROXY}/thing_descriptions/").raise_for_status().json()
for thing, td in tds.items():
    base = td["base"]
    if base != f"{PROXY}/":
        fail(f"{thing}: base is {base}, not {PROXY}/")
    for where, forms in forms_of(td):
        for form in forms:
            href = form["href"].replace("{id}", invocation["id"])
            resolves(urllib.parse.urljoin(base, href), f"{thing} {where}")
    for link in td.get("links", []):
        resolves(urllib.parse.urljoin(base, link["href"]), f"{thing} link {link.get('rel')}")
    resolves(f"{PROXY}/{thing}/", f"{thing} TD")

index = http.get(f"{PROXY}/things/").raise_for_status().json()
for thing, url in index.items():
    resolves(url, f"/things/ entry {thing}")

well_known = http.get(f"{PROXY}/.well-known/wot").raise_for_status().json()
for link in well_known["links"]:
    resolves(urllib.parse.urljoin(well_known["base"], link["href"]), "/.well-known/wot link")

print(f"links through the proxy: {checked} checked, {len(failures)} failed")
sys.exit(1 if failures else 0)
