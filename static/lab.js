// The lab view: a card for every Thing of this server, of the servers in the configuration
// (`lab.servers`) and of the directory (`directory`), read from their Thing Descriptions
// alone. It knows nothing of labthings' internals: any server with valid TDs is shown, and
// what cannot be shown is said.

const REFRESH_MS = 2000;
const KEY_PROPERTIES = 4;
const THUMBNAILS = 2;
const SCALAR = new Set(["number", "integer", "string", "boolean"]);

const lab = document.getElementById("lab");
const notices = document.getElementById("notices");
const summary = document.getElementById("summary");
const template = document.getElementById("card-template");

function notice(text) {
  const p = document.createElement("p");
  p.className = "error";
  p.textContent = text;
  notices.append(p);
}

/** Why a fetch failed, in words a lab user can act on. */
function reason(error, url) {
  if (error instanceof TypeError) {
    const origin = new URL(url, location.href).origin;
    if (origin !== location.origin) {
      return `${origin} does not answer, or does not let this page read it: its allow_origins must list ${location.origin}`;
    }
    return `${origin} does not answer`;
  }
  return error.message;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json, application/td+json" } });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      if (problem.detail) detail += `: ${problem.detail}`;
    } catch { /* not problem JSON */ }
    throw new Error(`${url} answered ${detail}`);
  }
  return response.json();
}

/** The TDs a server lists at /.well-known/wot (W3C WoT Discovery), with where each came from. */
async function serverThings(root) {
  const wellKnown = new URL(".well-known/wot", root).href;
  const introduction = await getJson(wellKnown);
  const base = introduction.base || wellKnown;
  const items = (introduction.links || []).filter((link) => link.rel === "item");
  return Promise.all(items.map(async (link) => {
    const url = new URL(link.href, base).href;
    return { td: await getJson(url), tdUrl: url };
  }));
}

/** A link of a TD, absolute. */
function resolve(td, href, tdUrl) {
  return new URL(href, td.base || tdUrl || location.href).href;
}

/** The forms of an affordance that read it. */
function readForm(affordance) {
  return (affordance.forms || []).find((form) => {
    const ops = form.op === undefined ? ["readproperty"] : [].concat(form.op);
    return ops.includes("readproperty") && !String(form.href).startsWith("ws");
  });
}

function rounded(value) {
  if (typeof value === "number" && !Number.isInteger(value)) {
    return Number(value.toPrecision(5)).toString();
  }
  if (Array.isArray(value)) return `[${value.map(rounded).join(", ")}]`;
  return typeof value === "string" ? value : JSON.stringify(value);
}

function securityNeedsToken(td) {
  const names = [].concat(td.security || []);
  return names.some((name) => (td.securityDefinitions?.[name]?.scheme ?? "nosec") !== "nosec");
}

function card({ td, tdUrl, source }) {
  const node = template.content.firstElementChild.cloneNode(true);
  node.dataset.id = td.id || "";
  node.querySelector("h2").textContent = td.title || "(a Thing without a title)";
  node.querySelector(".origin").textContent = `${td.id || "no id"} · ${td.base || tdUrl || ""} · from ${source}`;
  const cannot = [];

  const streams = (td.links || []).filter((link) => link.rel === "alternate"
    && String(link.type || "").startsWith("multipart/x-mixed-replace"));
  const thumbnails = node.querySelector(".thumbnails");
  for (const link of streams.slice(0, THUMBNAILS)) {
    const img = document.createElement("img");
    img.alt = `live stream ${link.href}`;
    img.src = resolve(td, link.href, tdUrl);
    img.addEventListener("error", () => { img.alt = `the stream ${img.src} cannot be shown`; });
    thumbnails.append(img);
  }
  if (streams.length === 0) cannot.push("no live stream in its TD");

  const keys = Object.entries(td.properties || {})
    .filter(([, p]) => (SCALAR.has(p.type) || (p.type === "array" && SCALAR.has(p.items?.type)))
      && !p.writeOnly && readForm(p))
    .slice(0, KEY_PROPERTIES);
  const list = node.querySelector(".key-properties");
  const values = keys.map(([name, property]) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    dt.title = property.title || property.description || name;
    const dd = document.createElement("dd");
    dd.textContent = "…";
    list.append(dt, dd);
    return { dd, url: resolve(td, readForm(property).href, tdUrl), unit: property.unit };
  });
  const needsToken = securityNeedsToken(td);
  if (needsToken) cannot.push("its properties need a token: values are not read");
  if (keys.length === 0) cannot.push("no readable property of a simple type in its TD");

  const links = node.querySelector(".links");
  const open = document.createElement("a");
  open.href = td.base || tdUrl || "#";
  open.textContent = "Open";
  links.append(open);
  if (tdUrl) {
    const tdLink = document.createElement("a");
    tdLink.href = tdUrl;
    tdLink.textContent = "Thing Description";
    links.append(tdLink);
  }
  node.querySelector(".cannot").textContent = cannot.length ? `Not shown: ${cannot.join("; ")}.` : "";

  const answer = node.querySelector(".answer");
  async function refresh() {
    const probe = needsToken ? [] : values;
    if (probe.length === 0) {
      // Nothing to read: whether it answers is whether its TD (or its base) can be fetched.
      const url = tdUrl || td.base;
      if (!url) { answer.textContent = "cannot tell"; return; }
      try {
        const response = await fetch(url, { method: "GET", headers: { Accept: "application/td+json, application/json" } });
        answer.textContent = response.status < 500 ? "answers" : `answers ${response.status}`;
        answer.className = `answer ${response.status < 500 ? "yes" : "no"}`;
      } catch (error) {
        answer.textContent = "does not answer";
        answer.className = "answer no";
        answer.title = reason(error, url);
      }
      return;
    }
    const results = await Promise.allSettled(probe.map(async ({ dd, url, unit }) => {
      const value = await getJson(url);
      dd.textContent = unit ? `${rounded(value)} ${unit}` : rounded(value);
      dd.title = "";
    }));
    const failed = [];
    results.forEach((result, i) => {
      if (result.status === "rejected") {
        const why = reason(result.reason, probe[i].url);
        probe[i].dd.textContent = "—";
        probe[i].dd.title = why;
        failed.push(why);
      }
    });
    if (failed.length === results.length) {
      answer.textContent = "does not answer";
      answer.className = "answer no";
      answer.title = failed[0];
    } else {
      answer.textContent = "answers";
      answer.className = "answer yes";
      answer.title = "";
    }
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
  return node;
}

async function main() {
  let sources = { servers: [], directory: null };
  try {
    sources = await getJson("sources");
  } catch (error) {
    notice(`The lab view's sources cannot be read: ${error.message}`);
  }
  const roots = [new URL("../", location.href).href, ...sources.servers];
  const loads = roots.map((root, index) => serverThings(root)
    .then((things) => things.map((thing) => ({ ...thing, source: index === 0 ? "this server" : root })))
    .catch((error) => {
      notice(`${root}: its Things cannot be listed (${reason(error, root)}).`);
      return [];
    }));
  if (sources.directory) {
    loads.push(getJson("directory/things")
      .then((tds) => tds.map((td) => ({ td, tdUrl: null, source: `the directory ${sources.directory}` })))
      .catch((error) => {
        notice(`The directory ${sources.directory} cannot be read: ${error.message}`);
        return [];
      }));
  }
  const seen = new Map();
  for (const things of await Promise.all(loads)) {
    for (const thing of things) {
      if (!thing.td || typeof thing.td !== "object") continue;
      const key = thing.td.id || `${thing.td.base}|${thing.td.title}`;
      // A Thing listed by its server and by the directory is shown once (its server's copy,
      // which has the TD's own URL).
      if (!seen.has(key) || (seen.get(key).tdUrl === null && thing.tdUrl)) seen.set(key, thing);
    }
  }
  lab.replaceChildren(...[...seen.values()].map(card));
  if (seen.size === 0) {
    const empty = document.createElement("p");
    empty.className = "hint";
    empty.textContent = "No Things found.";
    lab.append(empty);
  }
  const servers = new Set([...seen.values()].map(({ td }) => {
    try { return new URL(td.base).host; } catch { return td.base; }
  }));
  summary.textContent = `${seen.size} Things on ${servers.size} servers`;
  document.body.dataset.ready = "true";
}

main();
