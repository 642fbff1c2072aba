// The LabThings web UI: renders every Thing from its Thing Description, with no per-instrument
// code. Streams, properties (live over the websocket) and actions (forms from input schemas).

import { H264Player } from "./h264-player.js";

const main = document.getElementById("things");

// ---------------------------------------------------------------------------------------------
// Access tokens: when the server asks for one (401), the page asks the user, keeps the token
// for this tab only (sessionStorage) and sends it with every request: `Authorization: Bearer`
// on fetches, the `access_token` query parameter where a browser cannot set headers (images,
// websockets, download links). A link may carry `?access_token=`; it is then taken out of the
// address bar, so it is not copied on by accident.

const TOKEN_KEY = "labthings-access-token";

function takeTokenFromAddress() {
  const address = new URL(location.href);
  const given = address.searchParams.get("access_token");
  if (!given) return;
  sessionStorage.setItem(TOKEN_KEY, given);
  address.searchParams.delete("access_token");
  history.replaceState(null, "", address.href);
}

const token = () => sessionStorage.getItem(TOKEN_KEY);

/** `fetch`, with the token if there is one. */
function api(input, init = {}) {
  const current = token();
  if (!current) return fetch(input, init);
  const headers = new Headers(init.headers ?? {});
  headers.set("authorization", `Bearer ${current}`);
  return fetch(input, { ...init, headers });
}

/** A URL with the token in its query, for requests that cannot carry headers. */
function withToken(href) {
  const current = token();
  if (!current) return href;
  const address = new URL(href, document.baseURI);
  address.searchParams.set("access_token", current);
  return address.href;
}

/** Asks for a token, saying why; starts again with it. */
function askForToken(reason) {
  const id = "access-token";
  const input = element("input", { id, type: "password", autocomplete: "current-password", required: true });
  const form = element("form", { className: "token-form" },
    element("p", { role: "alert" }, reason),
    element("label", { for: id }, "Access token"), input,
    element("button", { type: "submit", className: "primary" }, "Use token"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    start();
  });
  main.replaceChildren(form);
  input.focus();
}

async function start() {
  let tds;
  try {
    const response = await api("thing_descriptions/");
    if (response.status === 401) {
      askForToken(token()
        ? "This token is not accepted here. Enter another."
        : "This server needs an access token to show its Things.");
      return;
    }
    if (!response.ok) throw new Error(await problemDetail(response));
    tds = await response.json();
  } catch (error) {
    main.replaceChildren(element("p", { className: "error", role: "alert" },
      `Could not load the Things: ${error}`));
    return;
  }
  main.replaceChildren();
  if (Object.keys(tds).length === 0) {
    main.append(element("p", { className: "loading" }, "This server has no Things."));
  }
  for (const [name, td] of Object.entries(tds)) {
    main.append(renderThing(name, td));
  }
}

/** `document.createElement` with properties and children. */
function element(tag, properties = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(properties)) {
    if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "for") {
      node.setAttribute(key, value);
    } else {
      node[key] = value;
    }
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** The detail of a problem JSON response, or the status line. */
async function problemDetail(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

function renderThing(name, td) {
  const section = document.getElementById("thing-template").content.firstElementChild.cloneNode(true);
  section.dataset.thing = name;
  section.querySelector("h2").textContent = td.title ?? name;
  const tdLink = section.querySelector(".td-link");
  tdLink.href = `${name}/`;
  section.querySelector(".description").replaceChildren(markdown(td.description ?? ""));
  const url = (href) => new URL(href, td.base ?? document.baseURI).href;

  renderStreams(section.querySelector(".streams"), name, td, url);

  const properties = section.querySelector(".properties");
  const views = new Map();
  for (const [property, affordance] of Object.entries(td.properties ?? {})) {
    const view = renderProperty(name, property, affordance, url);
    views.set(property, view);
    properties.append(view.node);
  }
  if (views.size === 0) properties.append(element("p", { className: "hint" }, "No properties."));
  observe(td, views, url);
  renderTrends(section.querySelector(".trends"), name, td, url, views);
  renderHealth(section.querySelector(".thing-header"), name, td, url, views);

  const actions = section.querySelector(".actions");
  // `stop_all` (every Thing with actions has it) is the header's Stop button, not a form.
  const { stop_all: stopAll, ...own } = td.actions ?? {};
  if (stopAll) section.querySelector(".thing-header").append(renderStopAll(name, stopAll, url));
  for (const [action, affordance] of Object.entries(own)) {
    actions.append(renderAction(name, action, affordance, url));
  }
  if (Object.keys(own).length === 0) {
    actions.append(element("p", { className: "hint" }, "No actions."));
  }
  renderEvents(section.querySelector(".events"), td, url);
  return section;
}

/** Whether a property is a `#[health]` state: an object whose `state` is one of these. */
function isHealthState(affordance) {
  const states = (affordance?.properties?.state?.oneOf ?? []).map((one) => one.const)
    .concat(affordance?.properties?.state?.enum ?? []);
  return ["ok", "busy", "faulted", "disconnected"].every((state) => states.includes(state));
}

/**
 * The header's health badge for a Thing with `#[health]`: its state, why and since when, kept
 * live by the `state` property's observation; while faulted, a button that clears the fault.
 */
function renderHealth(header, thing, td, url, views) {
  const view = views.get("state");
  if (!view || !isHealthState(td.properties.state)) return;
  const badge = element("span", { className: "health", role: "status", "data-health": "" });
  const clear = element("button", { type: "button", className: "clear-fault", hidden: true }, "Clear fault");
  const clearAction = td.actions?.clear_fault;
  const run = (clearAction?.forms ?? []).find((f) => [].concat(f.op ?? []).includes("invokeaction") && f.response);
  const href = run?.href ?? `${formHref(clearAction ?? {}, "invokeaction") ?? `${thing}/clear_fault`}/run`;
  clear.addEventListener("click", async () => {
    clear.disabled = true;
    try {
      const response = await api(url(href), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      if (!response.ok) throw new Error(await problemDetail(response));
      show((await response.json()));
    } catch (error) {
      badge.title = `Could not clear the fault: ${error.message}`;
    } finally {
      clear.disabled = false;
    }
  });
  const show = (status) => {
    if (!status || typeof status.state !== "string") return;
    badge.dataset.health = status.state;
    badge.className = `health health-${status.state}`;
    const since = status.since ? new Date(status.since) : null;
    const label = { ok: "OK", busy: "Busy", faulted: "Faulted", disconnected: "Disconnected" }[status.state] ?? status.state;
    badge.textContent = status.reason ? `${label}: ${status.reason}` : label;
    badge.title = since ? `since ${since.toLocaleString()} (server time)` : "";
    clear.hidden = status.state !== "faulted";
  };
  view.node.addEventListener("value", (event) => show(event.detail));
  // Beside the title, before the Stop button.
  header.querySelector(".td-link").after(badge, clear);
}

/** The header's "Stop everything" button: stops every running or waiting action of the Thing. */
function renderStopAll(thing, affordance, url) {
  const button = element("button", { type: "button", className: "stop-all", title: affordance.description ?? "" },
    "Stop everything");
  const result = element("span", { className: "stop-all-result", role: "status" });
  // The one-call form (its `response` says it answers with the output).
  const run = (affordance.forms ?? []).find((f) => [].concat(f.op ?? []).includes("invokeaction") && f.response);
  const href = run?.href ?? `${formHref(affordance, "invokeaction")}/run`;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const response = await api(url(href), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      if (!response.ok) throw new Error(await problemDetail(response));
      const { cancelled, not_cancellable: running } = await response.json();
      result.textContent = cancelled.length === 0 && running.length === 0 ? "Nothing was running."
        : `Stopped ${cancelled.length} action${cancelled.length === 1 ? "" : "s"}`
          + (running.length ? `; ${running.length} cannot be stopped and run to their end.` : ".");
    } catch (error) {
      result.textContent = `Could not stop ${thing}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return element("span", { className: "stop-all-box" }, button, result);
}

// ---------------------------------------------------------------------------------------------
// Streams

function renderStreams(container, thing, td, url) {
  const links = td.links ?? [];
  const streams = links.filter((link) => link.rel === "alternate"
    && String(link.type).startsWith("multipart/x-mixed-replace"));
  if (streams.length === 0) return;
  const image = element("img", { className: "stream-image", alt: `Live image of ${td.title ?? thing}` });
  const canvas = element("canvas", { className: "stream-video", hidden: true });
  canvas.setAttribute("aria-label", `Live H.264 video of ${td.title ?? thing}`);
  const fps = element("span", { className: "fps", "aria-live": "off" }, "– fps");
  const snapshot = element("a", { className: "snapshot", download: `${thing}.jpg` }, "Snapshot");
  snapshot.setAttribute("role", "button");
  const controls = element("div", { className: "controls" });
  // H.264 where the stream offers it (a `multipart/mixed` link at `<stream>/h264/units`) and the
  // browser decodes it (WebCodecs); MJPEG in an <img> everywhere else, and by default.
  const h264Of = (href) => links.find((link) => link.href === `${href}/h264/units`
    && String(link.type).startsWith("multipart/mixed"));
  const format = element("select", { id: `${thing}-stream-format`, className: "stream-format" },
    element("option", { value: "mjpeg" }, "MJPEG"), element("option", { value: "h264" }, "H.264"));
  const formatLabel = element("label", { for: format.id }, "Format");
  const remembered = `labthings:stream-format:${thing}`;
  format.value = localStorage.getItem(remembered) === "h264" ? "h264" : "mjpeg";
  let player = null;
  const choose = (href) => {
    const h264 = h264Of(href);
    const offered = Boolean(h264) && "VideoDecoder" in window;
    formatLabel.hidden = !offered;
    format.hidden = !offered;
    player?.stop();
    player = null;
    snapshot.href = withToken(url(`${href}/snapshot`));
    image.dataset.stream = href;
    if (offered && format.value === "h264") {
      image.removeAttribute("src");
      image.hidden = true;
      canvas.hidden = false;
      player = new H264Player(canvas, withToken(url(h264.href)), fps, api);
      canvas.player = player;
    } else {
      canvas.hidden = true;
      image.hidden = false;
      image.src = withToken(url(href));
    }
  };
  let current = streams[0].href;
  if (streams.length > 1) {
    const id = `${thing}-stream-choice`;
    const select = element("select", { id });
    for (const stream of streams) {
      select.append(element("option", { value: stream.href }, stream.href.split("/").pop()));
    }
    select.addEventListener("change", () => { current = select.value; choose(current); });
    controls.append(element("label", { for: id }, "Stream"), select);
  }
  format.addEventListener("change", () => {
    localStorage.setItem(remembered, format.value);
    choose(current);
  });
  controls.append(formatLabel, format, snapshot, fps);
  container.append(element("div", { className: "stream" }, image, canvas, controls));
  choose(current);
  trackFrameRate(image, fps, url, () => player === null);
}

/** The camera's frame rate, from the frame index of the snapshot, once a second. */
function trackFrameRate(image, label, url, active = () => true) {
  let last = null;
  setInterval(async () => {
    if (document.hidden || !image.dataset.stream || !active()) return;
    try {
      const response = await api(url(`${image.dataset.stream}/snapshot`), { method: "HEAD", cache: "no-store" });
      const index = Number(response.headers.get("x-frame-index"));
      const now = performance.now();
      if (response.ok && last && last.stream === image.dataset.stream && index >= last.index) {
        label.textContent = `${((index - last.index) / ((now - last.time) / 1000)).toFixed(1)} fps`;
      }
      last = response.ok ? { index, time: now, stream: image.dataset.stream } : null;
    } catch { /* the server may be restarting */ }
  }, 1000);
}

// ---------------------------------------------------------------------------------------------
// Editors generated from DataSchemas

/** The schema without its `null` option (Option<T> is `oneOf [T, null]`). */
function nonNull(schema) {
  const options = schema.oneOf ?? schema.anyOf;
  if (Array.isArray(options)) {
    const others = options.filter((option) => option.type !== "null");
    if (others.length === 1) return { ...others[0], nullable: true, title: schema.title, description: schema.description };
  }
  return schema;
}

/** An input for a value of `schema`: `{node, get(), set(value)}`; `get` throws a message. */
function editorFor(schema, id, label) {
  const s = nonNull(schema);
  if (Array.isArray(s.enum)) {
    const select = element("select", { id });
    s.enum.forEach((value, index) => select.append(element("option", { value: String(index) }, String(value))));
    if (s.nullable) select.append(element("option", { value: "null" }, "(none)"));
    return {
      node: select,
      get: () => (select.value === "null" ? null : s.enum[Number(select.value)]),
      set: (value) => { const i = s.enum.indexOf(value); select.value = i >= 0 ? String(i) : "null"; },
    };
  }
  if (s.type === "boolean") {
    const box = element("input", { id, type: "checkbox", role: "switch" });
    return { node: box, get: () => box.checked, set: (value) => { box.checked = Boolean(value); } };
  }
  if (s.type === "number" || s.type === "integer") {
    const input = element("input", { id, type: "number" });
    const minimum = s.minimum ?? (s.exclusiveMinimum !== undefined ? undefined : undefined);
    if (minimum !== undefined) input.min = minimum;
    if (s.maximum !== undefined) input.max = s.maximum;
    input.step = s.multipleOf ?? (s.type === "integer" ? 1 : "any");
    return {
      node: input,
      get: () => {
        if (input.value === "") {
          if (s.nullable) return null;
          throw new Error(`${label} needs a number`);
        }
        return Number(input.value);
      },
      set: (value) => { input.value = value ?? ""; },
    };
  }
  if (s.type === "string") {
    const input = element("input", { id, type: "text" });
    if (s.maxLength !== undefined) input.maxLength = s.maxLength;
    return {
      node: input,
      get: () => (input.value === "" && s.nullable ? null : input.value),
      set: (value) => { input.value = value ?? ""; },
    };
  }
  // A fixed-length list of numbers (a stage position `[x, y, z]`): one number field each.
  const items = s.items && !Array.isArray(s.items) ? nonNull(s.items) : undefined;
  if (s.type === "array" && items && (items.type === "number" || items.type === "integer")
      && s.minItems !== undefined && s.minItems === s.maxItems && s.maxItems >= 1 && s.maxItems <= 8) {
    const fields = Array.from({ length: s.maxItems }, (_, index) =>
      editorFor(items, `${id}-${index}`, `${label} [${index}]`));
    const group = element("span", { id, className: "tuple", role: "group" });
    fields.forEach((field, index) =>
      group.append(element("label", { className: "item" }, element("span", {}, `[${index}]`), field.node)));
    return {
      node: group,
      get: () => fields.map((field) => field.get()),
      set: (value) => fields.forEach((field, index) => field.set(Array.isArray(value) ? value[index] : undefined)),
    };
  }
  // Arrays, objects and anything else: JSON.
  const area = element("textarea", { id, spellcheck: false, rows: 2 });
  return {
    node: area,
    get: () => {
      try {
        return JSON.parse(area.value);
      } catch {
        throw new Error(`${label} is not valid JSON`);
      }
    },
    set: (value) => { area.value = JSON.stringify(value); },
  };
}

// ---------------------------------------------------------------------------------------------
// Values: numbers to a sensible precision, units and limits, plots

/** A number as a person reads it: integers whole, steps of `multipleOf` to their decimals, and
 *  anything else to six significant digits (24.1156, not 24.11558769896393). */
function formatNumber(value, schema = {}) {
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  const step = schema.multipleOf;
  if (typeof step === "number" && step > 0 && step < 1) {
    return value.toFixed(Math.min(10, Math.ceil(-Math.log10(step) - 1e-9)));
  }
  return String(Number(value.toPrecision(6)));
}

/** Any value as text, its numbers rounded as {@link formatNumber} does. */
function formatValue(value, schema = {}) {
  if (typeof value === "number") return formatNumber(value, nonNull(schema));
  return JSON.stringify(value, (_, item) =>
    (typeof item === "number" && !Number.isInteger(item) ? Number(item.toPrecision(6)) : item));
}

/** "0.1 – 1000 ms": the limits a value must keep to, with its unit. */
function limitsText(schema) {
  const s = nonNull(schema);
  const low = s.minimum ?? s.exclusiveMinimum;
  const high = s.maximum ?? s.exclusiveMaximum;
  const unit = s.unit ? ` ${s.unit}` : "";
  if (low !== undefined && high !== undefined) return `${low} – ${high}${unit}`;
  if (low !== undefined) return `at least ${low}${unit}`;
  if (high !== undefined) return `at most ${high}${unit}`;
  return s.unit ?? "";
}

const numeric = (value) => typeof value === "number" && Number.isFinite(value);
/** Fewer numbers than this are shown as text, more as a plot. */
const PLOT_FROM = 16;

/** How to show a value: a line plot for a list of numbers, a heat map for rows of numbers (an
 *  image), collapsible text when long, else plain text. */
function valueView(value, schema, name) {
  if (Array.isArray(value) && value.length >= PLOT_FROM && value.every(numeric)) {
    return plot(value, name);
  }
  if (Array.isArray(value) && value.length >= 2 && value.length <= 512
    && value.every((row) => Array.isArray(row) && row.length === value[0].length
      && row.length >= 2 && row.length <= 512 && row.every(numeric))) {
    return heatmap(value, name);
  }
  const text = formatValue(value, schema);
  if (text.length > 200) {
    return element("details", { className: "long-value" },
      element("summary", {}, `${name}: ${text.length} characters`),
      element("pre", { className: "value" }, text));
  }
  return element("output", { className: "value" }, text);
}

/** A link that downloads `text` as `filename`. */
function download(text, filename, label) {
  const href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  return element("a", { href, download: filename, className: "download" }, label);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

/** A line plot of a list of numbers (a spectrum, a line profile), with its range and a CSV. */
function plot(values, name) {
  const [width, height, pad] = [480, 160, 6];
  let [low, high] = [Infinity, -Infinity];
  for (const value of values) { low = Math.min(low, value); high = Math.max(high, value); }
  const span = high - low || 1;
  const points = values.map((value, i) => {
    const x = pad + (i * (width - 2 * pad)) / (values.length - 1);
    const y = height - pad - ((value - low) * (height - 2 * pad)) / span;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "plot",
    "data-points": values.length,
    "aria-label": `${name}: ${values.length} values from ${formatNumber(low)} to ${formatNumber(high)}` });
  chart.append(svg("rect", { x: 0, y: 0, width, height, class: "plot-frame" }),
    svg("polyline", { points, class: "plot-line" }));
  const csv = ["index,value", ...values.map((value, i) => `${i},${value}`)].join("\n");
  return element("figure", { className: "chart" }, chart,
    element("figcaption", { className: "hint" },
      `${values.length} values, ${formatNumber(low)} to ${formatNumber(high)} · `,
      download(csv, `${name}.csv`, "Download CSV")));
}

/** Values (row by row, `width` to a row) as a grey heat map, darkest the lowest; for arrays
 *  too large to spread into `Math.min`. */
function heatmapOf(values, width, height, name) {
  let [low, high] = [Infinity, -Infinity];
  for (const value of values) { low = Math.min(low, value); high = Math.max(high, value); }
  const canvas = element("canvas", { width, height, className: "heatmap", role: "img",
    "aria-label": `${name}: ${width} × ${height} values from ${formatNumber(low)} to ${formatNumber(high)}` });
  canvas.dataset.columns = width;
  canvas.dataset.rows = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const span = high - low || 1;
  for (let i = 0; i < values.length; i += 1) {
    const level = Math.round((255 * (values[i] - low)) / span);
    image.data[i * 4] = level;
    image.data[i * 4 + 1] = level;
    image.data[i * 4 + 2] = level;
    image.data[i * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  return element("figure", { className: "chart" }, canvas,
    element("figcaption", { className: "hint" }, `${width} × ${height} values, ${formatNumber(low)} to ${formatNumber(high)}`));
}

/** Rows of numbers (a small image) as a grey heat map, darkest the lowest, with a CSV. */
function heatmap(rows, name) {
  const figure = heatmapOf(rows.flat(), rows[0].length, rows.length, name);
  const csv = rows.map((row) => row.join(",")).join("\n");
  figure.querySelector("figcaption").append(" · ", download(csv, `${name}.csv`, "Download CSV"));
  return figure;
}

// ---------------------------------------------------------------------------------------------
// Doc comments: a safe subset of Markdown, built as DOM nodes (never parsed as HTML)

/** Paragraphs, `- ` lists, `code`, **strong**, *emphasis* and [links](https://...). */
function markdown(text) {
  const fragment = document.createDocumentFragment();
  for (const block of String(text).split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((line) => line.trim() !== "");
    if (lines.length === 0) continue;
    if (lines.every((line) => /^\s*[-*] /.test(line))) {
      fragment.append(element("ul", {}, ...lines.map((line) =>
        element("li", {}, ...inline(line.replace(/^\s*[-*] /, ""))))));
    } else {
      fragment.append(element("p", {}, ...inline(lines.join(" "))));
    }
  }
  return fragment;
}

const INLINE = /`([^`]+)`|\*\*([^*]+)\*\*|(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])|(?<!\w)_([^_\s][^_]*)_(?!\w)|\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g;

function inline(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    const [, code, strong, star, underscore, label, href] = match;
    if (code !== undefined) nodes.push(element("code", {}, code));
    else if (strong !== undefined) nodes.push(element("strong", {}, strong));
    else if (star !== undefined || underscore !== undefined) nodes.push(element("em", {}, star ?? underscore));
    else nodes.push(element("a", { href, rel: "noopener noreferrer", target: "_blank" }, label));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

/** The part of a description beyond its first line (the title, shown as the label). */
function beyondTitle(affordance) {
  const description = affordance.description ?? "";
  const title = affordance.title ?? "";
  const rest = description.startsWith(title) ? description.slice(title.length).replace(/^\.?\s*/, "") : description;
  return rest.trim();
}

// ---------------------------------------------------------------------------------------------
// Properties

function formHref(affordance, op) {
  const form = (affordance.forms ?? []).find((f) => [].concat(f.op ?? []).includes(op));
  return form?.href;
}

function renderProperty(thing, name, affordance, url) {
  const id = `${thing}-${name}-property`;
  const valueNode = element("output", { className: "value", "data-property-value": name });
  const error = element("span", { className: "error", role: "alert" });
  const node = element("div", { className: "property", "data-property": name });
  // People read the title; the identifier (what scripts use) is shown beside it.
  const label = affordance.title ?? name;
  const unit = affordance.unit ? element("span", { className: "unit" }, affordance.unit) : null;
  const plotView = element("div", { className: "plot-view" });
  const href = url(formHref(affordance, "readproperty") ?? `${thing}/${name}`);
  let editor = null;
  const row = element("div", { className: "row" });
  if (affordance.readOnly) {
    node.append(element("span", { className: "name" }, label), row);
    row.append(...[valueNode, unit, element("span", { className: "hint" }, "read-only")].filter(Boolean));
  } else {
    editor = editorFor(affordance, id, name);
    const button = element("button", { type: "submit" }, "Set");
    // The server checks values and says why it refuses one; the browser's own checks would
    // block the request with a less helpful message.
    const form = element("form", { className: "row", noValidate: true }, editor.node, button, valueNode, unit);
    // (`element` leaves out a missing unit.)
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      let value;
      try {
        value = editor.get();
      } catch (problem) {
        error.textContent = problem.message;
        return;
      }
      const response = await api(url(formHref(affordance, "writeproperty") ?? href), {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(value),
      });
      if (!response.ok) {
        error.textContent = await problemDetail(response);
      } else if (!affordance.observable) {
        show(await (await api(href)).json());
      }
    });
    node.append(element("label", { for: id }, label), form);
  }
  const limits = limitsText(affordance);
  node.append(element("span", { className: "hint" }, element("code", {}, name),
    limits ? ` · ${limits}` : ""));
  const more = beyondTitle(affordance);
  if (more) node.append(element("div", { className: "doc" }, markdown(more)));
  node.append(plotView, error);
  let edited = false;
  if (editor) editor.node.addEventListener("input", () => { edited = true; });
  const show = (value) => {
    const view = valueView(value, affordance, name);
    if (view.tagName === "OUTPUT") {
      valueNode.textContent = view.textContent;
      plotView.replaceChildren();
    } else {
      valueNode.textContent = `${Array.isArray(value) ? value.length : ""} values`;
      plotView.replaceChildren(view);
    }
    // Keep what the user is typing; otherwise show the live value in the editor too.
    if (editor && (!edited || document.activeElement !== editor.node)) {
      editor.set(value);
      edited = false;
    }
    // For the trend plot, which then fetches the samples with their server timestamps.
    node.dispatchEvent(new CustomEvent("value", { detail: value }));
  };
  return { node, show, href, observable: affordance.observable === true };
}

/** The Thing's own form for `op` (`observeallproperties`, `subscribeallevents`). */
function thingFormHref(td, op) {
  return (td.forms ?? []).find((f) => [].concat(f.op ?? []).includes(op))?.href;
}

/**
 * Live values over Server-Sent Events (the browser reconnects by itself and resumes where it
 * stopped), or over the websocket from a server without them; properties that are not
 * observable are read once.
 */
function observe(td, views, url) {
  for (const view of views.values()) {
    if (!view.observable) {
      api(view.href).then((r) => r.json()).then(view.show).catch(() => {});
    }
  }
  const observable = [...views.entries()].filter(([, view]) => view.observable);
  if (observable.length === 0) return;
  const sseHref = thingFormHref(td, "observeallproperties");
  if (sseHref) {
    const source = new EventSource(withToken(url(sseHref)));
    for (const [name, view] of observable) {
      source.addEventListener(name, (event) => view.show(JSON.parse(event.data)));
    }
    return;
  }
  const wsForm = (td.properties[observable[0][0]].forms ?? [])
    .find((f) => [].concat(f.op ?? []).includes("observeproperty") && f.subprotocol !== "sse");
  const wsHref = wsForm?.href;
  if (!wsHref) return;
  const connect = () => {
    const socket = new WebSocket(withToken(url(wsHref)));
    socket.addEventListener("open", () => {
      const data = Object.fromEntries(observable.map(([name]) => [name, true]));
      socket.send(JSON.stringify({ messageType: "addPropertyObservation", data }));
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.messageType !== "propertyStatus") return;
      for (const [name, value] of Object.entries(message.data)) views.get(name)?.show(value);
    });
    // Reconnect after a server restart.
    socket.addEventListener("close", () => setTimeout(connect, 2000));
  };
  connect();
}

// ---------------------------------------------------------------------------------------------
// Trends: numeric properties with a history, plotted against the server's time (uPlot)

/** The ranges a trend plot can show, in seconds (`0`: everything kept). */
const TREND_RANGES = [["1 min", 60], ["10 min", 600], ["1 h", 3600], ["All kept", 0]];
/** How often a trend asks for new samples while its properties change, at most (ms). */
const TREND_REFRESH_MS = 1000;

/** An RFC 3339 UTC time with microseconds, as seconds since 1970 (what uPlot's time axis
 *  takes), keeping the microseconds that `Date` would drop. */
function serverSeconds(stamp) {
  const [whole, fraction = ""] = stamp.replace(/Z$/, "").split(".");
  return Date.parse(`${whole}Z`) / 1000 + Number(`0.${fraction || "0"}`);
}

let uPlotLoaded = null;
/** Loads the vendored uPlot once, only for pages that draw a trend. */
function loadUPlot() {
  uPlotLoaded ??= new Promise((resolve, reject) => {
    document.head.append(element("link", { rel: "stylesheet", href: "static/uplot.min.css" }));
    const script = element("script", { src: "static/uplot.min.js" });
    script.addEventListener("load", () => resolve(window.uPlot));
    script.addEventListener("error", () => reject(new Error("the plotting library did not load")));
    document.head.append(script);
  });
  return uPlotLoaded;
}

/**
 * One plot per Thing for its numeric properties that keep a history (the TD's `history`
 * links): first what the server kept, then each change as it comes (a change seen over
 * Server-Sent Events asks for the samples since the last one, so every point has the server's
 * timestamp). A box per property chooses what is drawn; properties with different units get
 * their own axis.
 */
function renderTrends(container, thing, td, url, views) {
  const trends = [];
  for (const link of td.links ?? []) {
    if (link.rel !== "history" || !link.anchor) continue;
    const anchor = url(link.anchor);
    const entry = Object.entries(td.properties ?? {}).find(([name, affordance]) =>
      url(formHref(affordance, "readproperty") ?? `${thing}/${name}`) === anchor);
    if (!entry) continue;
    const [name, affordance] = entry;
    const type = nonNull(affordance).type;
    if (type !== "number" && type !== "integer") continue;
    trends.push({ name, affordance, href: url(link.href), times: [], values: [], view: views.get(name) });
  }
  if (trends.length === 0) return;
  container.hidden = false;
  const figure = element("div", { className: "trend-plot", role: "img",
    "aria-label": `Trend of ${trends.map((t) => t.name).join(", ")}` });
  const status = element("span", { className: "hint trend-status", role: "status" });
  const range = element("select", { className: "trend-range" },
    ...TREND_RANGES.map(([label, seconds]) => element("option", { value: seconds, selected: seconds === 600 }, label)));
  const boxes = trends.map((trend) => {
    const box = element("input", { type: "checkbox", checked: true, "data-trend": trend.name });
    const csv = element("a", { href: withToken(`${trend.href}?format=csv`), className: "download",
      download: `${thing}_${trend.name}_history.csv` }, "CSV");
    return element("label", { className: "trend-choice" }, box, ` ${trend.affordance.title ?? trend.name}`,
      trend.affordance.unit ? ` (${trend.affordance.unit})` : "", " · ", csv);
  });
  container.append(element("div", { className: "row trend-controls" }, ...boxes,
    element("label", {}, "Show ", range), status), figure);

  let chart = null;
  const shown = () => trends.filter((_, i) => boxes[i].querySelector("input").checked);
  const draw = async () => {
    const uPlot = await loadUPlot();
    const chosen = shown();
    const units = [...new Set(chosen.map((t) => t.affordance.unit ?? t.name))];
    const seconds = Number(range.value);
    const last = Math.max(...chosen.map((t) => t.times.at(-1) ?? 0));
    // A value holds until it changes: a property that changed long ago (a setting) is drawn
    // up to the newest time of the plot.
    const series = chosen.map((t) => (t.times.length && t.times.at(-1) < last
      ? [[...t.times, last], [...t.values, t.values.at(-1)]]
      : [t.times, t.values]));
    const data = chosen.length ? uPlot.join(series) : [[]];
    const xRange = seconds && last ? [last - seconds, last] : null;
    chart?.destroy();
    const palette = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00"];
    chart = new uPlot({
      width: Math.max(240, container.clientWidth || 640),
      height: 240,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, ...(xRange ? { range: () => xRange } : {}) } },
      series: [
        { label: "time (server)" },
        ...chosen.map((t, i) => ({
          label: t.affordance.title ?? t.name,
          scale: t.affordance.unit ?? t.name,
          stroke: palette[trends.indexOf(t) % palette.length],
          width: 1.5,
          spanGaps: true,
          // Where the cursor is; away from the plot, the newest value.
          value: (_, v) => {
            const shown = v ?? t.values.at(-1);
            return shown == null ? "–" : `${formatNumber(shown, t.affordance)}${t.affordance.unit ? ` ${t.affordance.unit}` : ""}`;
          },
        })),
      ],
      axes: [
        {},
        ...units.slice(0, 2).map((unit, i) => ({
          scale: unit, label: unit, side: i === 0 ? 3 : 1,
          grid: { show: i === 0 },
          values: (_, ticks) => ticks.map((v) => formatNumber(v)),
        })),
      ],
    }, data, figure);
    figure.dataset.points = String(chosen.reduce((n, t) => n + t.values.length, 0));
    figure.dataset.newest = String(last);
    status.textContent = chosen.length
      ? `${figure.dataset.points} samples · newest ${chosen.map((t) => `${t.name} ${formatNumber(t.values.at(-1), t.affordance)}`).join(", ")}`
      : "Nothing chosen";
  };

  const fetchNew = async (trend) => {
    const since = trend.lastStamp ? `?since=${encodeURIComponent(trend.lastStamp)}` : "";
    const response = await api(`${trend.href}${since}`);
    if (!response.ok) throw new Error(await problemDetail(response));
    const body = await response.json();
    for (const sample of body.samples) {
      const t = serverSeconds(sample.timestamp);
      if (typeof sample.value !== "number") continue;
      // A sample that took a newer value in place (coalescing) comes again with a later time.
      if (trend.times.length && t <= trend.times.at(-1)) continue;
      trend.times.push(t);
      trend.values.push(sample.value);
    }
    if (body.samples.length) trend.lastStamp = body.samples.at(-1).timestamp;
    // Keep what the server keeps, no more.
    const excess = trend.values.length - (body.max_samples ?? trend.values.length);
    if (excess > 0) { trend.times.splice(0, excess); trend.values.splice(0, excess); }
  };

  let pending = null;
  const refresh = () => {
    pending ??= setTimeout(async () => {
      try {
        await Promise.all(trends.map(fetchNew));
        await draw();
      } catch (error) {
        status.textContent = `Trend not updated: ${error.message}`;
      } finally {
        pending = null;
      }
    }, TREND_REFRESH_MS);
  };
  for (const trend of trends) trend.view?.node.addEventListener("value", refresh);
  for (const box of boxes) box.addEventListener("change", () => draw());
  range.addEventListener("change", () => draw());
  // The plot follows its section's width (the figure clips, so it never pushes it wider).
  new ResizeObserver(() => chart?.setSize({ width: Math.max(240, container.clientWidth), height: 240 })).observe(container);
  Promise.all(trends.map(fetchNew)).then(draw).catch((error) => {
    status.textContent = `No trend: ${error.message}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Events

/** How many events each Thing's list keeps. */
const EVENTS_SHOWN = 50;

/** The server's time in a Server-Sent Events id (`<cursor> <RFC 3339 time>`), if there. */
function serverTime(id) {
  const time = new Date(String(id ?? "").split(" ")[1] ?? "");
  return Number.isNaN(time.getTime()) ? null : time;
}

/** "14:03:07.123": the local time of day, to the millisecond. */
function clockTime(time) {
  return `${time.toLocaleTimeString([], { hour12: false })}.${String(time.getMilliseconds()).padStart(3, "0")}`;
}

/** Each event with its description, and a live list of the newest emissions. */
function renderEvents(container, td, url) {
  const events = Object.entries(td.events ?? {});
  const href = thingFormHref(td, "subscribeallevents");
  if (events.length === 0 || !href) return;
  container.hidden = false;
  const names = element("ul", { className: "event-names" });
  for (const [name, affordance] of events) {
    const item = element("li", {}, element("span", { className: "name" }, name));
    if (affordance.title && affordance.title !== name) {
      item.append(" ", element("span", { className: "hint" }, affordance.title));
    }
    names.append(item);
  }
  const log = element("ol", { className: "event-log", "aria-live": "polite" });
  const empty = element("p", { className: "hint" }, "No events yet.");
  container.append(names, empty, log);
  const add = (item) => {
    empty.remove();
    log.prepend(item);
    while (log.children.length > EVENTS_SHOWN) log.lastElementChild.remove();
  };
  const source = new EventSource(withToken(url(href)));
  for (const [name, affordance] of events) {
    const schema = affordance.data ?? {};
    source.addEventListener(name, (event) => {
      // The server's time is in the message's id, after the cursor; the browser's clock only
      // for a server that does not send it.
      const stamp = serverTime(event.lastEventId);
      const shown = stamp ?? new Date();
      let data;
      try { data = JSON.parse(event.data); } catch { data = event.data; }
      add(element("li", { "data-event": name },
        element("time", { dateTime: shown.toISOString(), title: stamp ? "server time" : "this browser's time" },
          clockTime(shown)),
        " ", element("span", { className: "name" }, name), " ",
        element("span", { className: "value" }, formatValue(data, schema)),
        schema.unit ? element("span", { className: "unit" }, ` ${schema.unit}`) : null));
    });
  }
  source.addEventListener("labthings:lost", (event) => {
    const missed = JSON.parse(event.data).missed;
    add(element("li", { className: "error" },
      missed == null ? "Some events may have been missed." : `${missed} events were missed.`));
  });
}

// ---------------------------------------------------------------------------------------------
// Actions

function renderAction(thing, name, affordance, url) {
  const node = element("div", { className: "action", "data-action": name });
  const fields = [];
  const form = element("form", { noValidate: true });
  const input = affordance.input ?? {};
  const required = new Set(input.required ?? []);
  for (const [field, schema] of Object.entries(input.properties ?? {})) {
    const id = `${thing}-${name}-${field}`;
    const editor = editorFor(schema, id, field);
    fields.push({ field, editor, optional: !required.has(field) });
    const label = element("label", { for: id }, required.has(field) ? field : `${field} (optional)`);
    const limits = limitsText(schema);
    form.append(element("div", { className: "field" }, label, editor.node,
      limits ? element("span", { className: "hint" }, limits) : null));
  }
  // Defaults the action states are filled in (a recording's 10 s); then the last values sent,
  // kept in this browser, over them.
  for (const { field, editor } of fields) {
    const fallback = input.properties[field].default;
    if (fallback !== undefined && fallback !== null) editor.set(fallback);
  }
  // The last values sent are kept (in this browser) and filled in again.
  const remembered = `labthings:${thing}/${name}`;
  try {
    const last = JSON.parse(localStorage.getItem(remembered) ?? "{}");
    for (const { field, editor } of fields) if (field in last) editor.set(last[field]);
  } catch { /* nothing kept */ }
  const invoke = element("button", { type: "submit", className: "primary" }, `Invoke ${name}`);
  const error = element("span", { className: "error", role: "alert" });
  const invocation = element("div", { className: "invocation", "aria-live": "polite" });
  form.append(element("div", { className: "field" }, invoke), error);
  const more = beyondTitle(affordance);
  node.append(...[element("span", { className: "name" }, affordance.title ?? name),
    element("span", { className: "hint" }, element("code", {}, name)),
    more ? element("div", { className: "doc" }, markdown(more)) : null, form, invocation].filter(Boolean));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = {};
    try {
      for (const { field, editor, optional } of fields) {
        const value = editor.get();
        if (!(optional && (value === null || value === ""))) body[field] = value;
      }
    } catch (problem) {
      error.textContent = problem.message;
      return;
    }
    try {
      localStorage.setItem(remembered, JSON.stringify(body));
    } catch { /* storage full or off: nothing kept */ }
    const href = url(formHref(affordance, "invokeaction") ?? `${thing}/${name}`);
    const response = await api(href, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      error.textContent = await problemDetail(response);
      return;
    }
    // Only an action whose TD offers `cancelaction` can be stopped once running.
    follow(await response.json(), invocation, formHref(affordance, "cancelaction") !== undefined,
      () => form.requestSubmit(), name, affordance.output);
  });
  return node;
}

/** Reads a little-endian, C-order `.npy` (versions 1 to 3) of u8, u16, f32 or f64. */
function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const major = bytes[6];
  const start = major === 1 ? 10 : 12;
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const header = new TextDecoder().decode(bytes.subarray(start, start + length));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "")
    .split(",").map((size) => size.trim()).filter(Boolean).map(Number);
  const Type = { "|u1": Uint8Array, "<u2": Uint16Array, "<f4": Float32Array, "<f8": Float64Array }[descr];
  if (!Type || fortran) return null;
  const count = shape.reduce((product, size) => product * size, 1);
  const offset = start + length;
  return { shape, values: new Type(buffer.slice(offset, offset + count * Type.BYTES_PER_ELEMENT)) };
}

/** The largest arrays previewed: points of a 1-D plot, and each side of a heat map. */
const PREVIEW_POINTS = 100000;
const PREVIEW_SIDE = 1024;

/** A preview of an array output, read from its `.npy`: a line plot of a 1-D array, a heat map
 *  of a 2-D one; nothing for larger or other arrays. */
async function previewArray(link, name) {
  const [first, second] = link.shape;
  const small = link.shape.length === 1 ? first <= PREVIEW_POINTS
    : link.shape.length === 2 && first <= PREVIEW_SIDE && second <= PREVIEW_SIDE;
  if (!small) return null;
  const response = await api(link.href, { headers: { accept: "application/x-npy" } });
  if (!response.ok) return null;
  const array = parseNpy(await response.arrayBuffer());
  if (!array) return null;
  const preview = link.shape.length === 1
    ? plot(Array.from(array.values), name)
    : heatmapOf(array.values, array.shape[1], array.shape[0], name);
  preview.classList.add("array-preview");
  return preview;
}

/** Shows an invocation and polls it until it ends; with a Cancel button if it can stop. */
async function follow(started, container, cancellable, again, name, outputSchema) {
  const status = element("span", { className: "status", "data-status": started.status });
  const cancel = element("button", { type: "button" }, "Cancel");
  cancel.hidden = !cancellable;
  const log = element("ul", { className: "log" });
  const output = element("div", { className: "output" });
  const progress = element("progress", { max: 1 });
  progress.hidden = true;
  container.replaceChildren(element("div", { className: "field" }, status, progress, cancel), log, output);
  cancel.addEventListener("click", () => api(started.href, { method: "DELETE" }));
  let current = started;
  for (;;) {
    status.textContent = current.status;
    status.className = `status ${current.status}`;
    status.dataset.status = current.status;
    if (typeof current.progress === "number") {
      progress.hidden = false;
      progress.value = current.progress;
    }
    log.replaceChildren(...(current.log ?? []).map((record) =>
      element("li", {}, `${record.levelname}: ${record.message}`)));
    if (!["pending", "running"].includes(current.status)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
    const response = await api(started.href, { cache: "no-store" });
    if (!response.ok) break;
    current = await response.json();
  }
  cancel.remove();
  const rerun = element("button", { type: "button", className: "again" }, "Run again");
  rerun.addEventListener("click", again);
  status.after(rerun);
  if (current.status === "completed") {
    const value = current.output;
    if (value && typeof value === "object" && value.href && value.media_type) {
      if (String(value.media_type).startsWith("image/")) {
        output.append(element("img", { src: withToken(value.href), alt: "Action output" }));
      }
      output.append(element("a", { href: withToken(value.href), download: "" }, `Download (${value.media_type})`));
      // A numeric array: its shape and type (and names and unit), the same array as a TIFF
      // image, and a preview: a plot of a 1-D array, a heat map of a 2-D one.
      if (Array.isArray(value.shape) && value.dtype) {
        const axes = Array.isArray(value.axes) ? ` (${value.axes.join(" × ")})` : "";
        const unit = value.unit ? ` in ${value.unit}` : "";
        output.append(" ", element("span", { className: "hint" }, `${value.shape.join(" × ")}${axes} ${value.dtype}${unit}`));
        if (value.shape.length >= 2) {
          output.append(" ", element("a", { href: withToken(`${value.href}.tiff`), download: "" }, "Download TIFF"));
        }
        if (value.metadata && typeof value.metadata === "object") {
          output.append(element("details", { className: "array-metadata" }, element("summary", {}, "Metadata"),
            element("pre", { className: "value" }, formatValue(value.metadata))));
        }
        previewArray(value, name).then((view) => { if (view) output.append(view); }).catch(() => {});
      }
    } else {
      const schema = outputSchema ?? {};
      output.append(element("span", { className: "hint" }, "Output: "), valueView(value, schema, name),
        schema.unit ? element("span", { className: "unit" }, ` ${schema.unit}`) : null);
    }
  } else if (current.error) {
    output.append(element("span", { className: "error" }, current.error.detail ?? current.status));
  }
}

takeTokenFromAddress();
start();
