// The web UI in headless Chromium (Debian's, driven by playwright-core), against the microscope
// example. Usage: node ui.test.mjs http://127.0.0.1:PORT SCREENSHOT.png
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.
import { chromium } from "playwright-core";
import { assert, check, eventually, finish } from "../support/checks.mjs";

const [base, screenshot] = [process.argv[2].replace(/\/$/, ""), process.argv[3]];
const server = async (path) => (await fetch(`${base}${path}`)).json();

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
const problems = [];
// The bad-value check provokes one 422 on purpose; Chromium logs it to the console too.
let expectRejection = false;
page.on("console", (message) => {
  if (message.type() !== "error") return;
  if (expectRejection && message.text().includes("status of 422")) return;
  problems.push(`console: ${message.text()}`);
});
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("requestfailed", async (request) => {
  // A live stream's or an event stream's request is aborted when the page switches streams,
  // reloads or closes: not a failure.
  if (request.failure()?.errorText === "net::ERR_ABORTED"
    && /mjpeg_stream|\/observe$|\/events$/.test(new URL(request.url()).pathname)) return;
  // Chromium reports a fetch answered `204 No Content` as aborted although it succeeded
  // (microsoft/playwright#32752); the response tells the truth.
  if ((await request.response())?.status() === 204) return;
  problems.push(`request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`);
});
page.on("response", (response) => {
  if (expectRejection && response.status() === 422) return;
  if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
});

/** The camera image's pixels below the caption (the caption shows the time). */
const pixels = () => page.evaluate(() => {
  const image = document.querySelector('[data-thing="camera"] img.stream-image');
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const top = Math.ceil(canvas.height * 0.12);
  return Array.from(context.getImageData(0, top, canvas.width, canvas.height - top).data);
});
const wholeImage = () => page.evaluate(() => {
  const image = document.querySelector('[data-thing="camera"] img.stream-image');
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  canvas.getContext("2d").drawImage(image, 0, 0);
  return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
});
const changed = (a, b) => a.filter((value, i) => Math.abs(value - b[i]) > 32).length / a.length;

await check("the page loads every Thing with its stream", async () => {
  await page.goto(`${base}/`);
  await page.waitForSelector('[data-thing="stage"]');
  await page.waitForSelector('[data-thing="camera"] img.stream-image');
  await eventually(() => page.evaluate(() =>
    document.querySelector('[data-thing="camera"] img.stream-image').naturalWidth > 0), "no frame shown");
  const links = await page.$$eval("header nav a", (as) => as.map((a) => a.getAttribute("href")));
  assert(links.includes("docs/") && links.includes("openapi.json"), `links ${links}`);
});

await check("the stream image's pixels change over time", async () => {
  const before = await wholeImage();
  await page.waitForTimeout(700);
  const after = await wholeImage();
  assert(changed(before, after) > 0, "the image did not change");
});

await check("the live frame rate is shown", async () => {
  const text = await eventually(async () => {
    const fps = await page.textContent('[data-thing="camera"] .fps');
    return /\d+(\.\d)? fps/.test(fps) && fps;
  }, "no frame rate shown");
  assert(parseFloat(text) > 5, `frame rate ${text}`);
});

await check("setting a property in the UI changes it on the server", async () => {
  const property = page.locator('[data-thing="camera"] [data-property="exposure_ms"]');
  await property.locator("input").fill("20");
  await property.locator("button").click();
  await eventually(async () => (await server("/camera/exposure_ms")) === 20, "exposure_ms is not 20");
  await eventually(async () => (await property.locator("output").textContent()) === "20", "no live value");
});

await check("a fixed-length numeric array is edited one field per item", async () => {
  const property = page.locator('[data-thing="stage"] [data-property="position"]');
  const fields = property.locator(".tuple input[type=number]");
  assert((await fields.count()) === 3, `${await fields.count()} fields for [x, y, z]`);
  assert((await property.locator("textarea").count()) === 0, "a JSON text area");
  await fields.nth(0).fill("7");
  await fields.nth(1).fill("-3");
  await fields.nth(2).fill("1");
  await property.locator("button").click();
  await eventually(async () => JSON.stringify(await server("/stage/position")) === "[7,-3,1]",
    `position: ${JSON.stringify(await server("/stage/position"))}`);
  // Back home, for the checks that move the stage from there.
  for (const index of [0, 1, 2]) await fields.nth(index).fill("0");
  await property.locator("button").click();
  await eventually(async () => JSON.stringify(await server("/stage/position")) === "[0,0,0]",
    "the stage did not go back home");
});

await check("a bad value shows the server's error inline", async () => {
  expectRejection = true;
  const property = page.locator('[data-thing="camera"] [data-property="exposure_ms"]');
  await property.locator("input").fill("0.01");
  await property.locator("button").click();
  const error = await eventually(async () => await property.locator(".error").textContent(), "no error shown");
  assert(error.includes("at least 0.1"), `error: ${error}`);
  assert((await server("/camera/exposure_ms")) === 20, "the bad value was applied");
  expectRejection = false;
});

await check("moving the stage from the UI completes and moves the camera image", async () => {
  const before = await pixels();
  const action = page.locator('[data-thing="stage"] [data-action="move_relative"]');
  await action.locator("#stage-move_relative-x").fill("120");
  await action.locator("#stage-move_relative-y").fill("40");
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor();
  const output = await action.locator(".output").textContent();
  assert(output.includes("[120,40,0]") && output.endsWith("steps"), `output, with its unit: ${output}`);
  assert(JSON.stringify(await server("/stage/position")) === "[120,40,0]", "stage did not move");
  await page.waitForTimeout(500);
  const after = await pixels();
  assert(changed(before, after) > 0.05, `only ${changed(before, after)} of the image changed`);
});

await check("the stage's events appear live in its list", async () => {
  const log = page.locator('[data-thing="stage"] .event-log');
  await eventually(async () => (await log.locator('li[data-event="moved"]').count()) > 0, "no event shown");
  const item = log.locator('li[data-event="moved"]').first();
  const text = await item.textContent();
  assert(text.includes("[120,40,0]") && text.endsWith("steps"), `event, with its unit: ${text}`);
  // Stamped by the server (the time is in the message's id), to the millisecond.
  assert(await item.locator("time").getAttribute("title") === "server time", "the server's time is shown");
  const stamp = Date.parse(await item.locator("time").getAttribute("datetime"));
  assert(Math.abs(stamp - Date.now()) < 60000, `a time of this run: ${new Date(stamp).toISOString()}`);
  assert(/\d\d:\d\d:\d\d\.\d{3}/.test(text), `the time to the millisecond: ${text}`);
});

await check("an action with a blob output shows the image", async () => {
  const action = page.locator('[data-thing="camera"] [data-action="capture"]');
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor();
  await eventually(() => action.locator(".output img").evaluate((img) => img.naturalWidth === 640),
    "the captured image is not shown");
});

await check("recording the stream offers 10 s and a video download when done", async () => {
  const action = page.locator('[data-thing="camera"] [data-action="record_mjpeg_stream"]');
  assert(await action.locator("#camera-record_mjpeg_stream-seconds").inputValue() === "10",
    "the form does not offer 10 s");
  await action.locator("#camera-record_mjpeg_stream-seconds").fill("1");
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor({ timeout: 15000 });
  const link = action.locator(".output a[download]");
  assert((await link.textContent()).includes("video/x-msvideo"), await link.textContent());
  const response = await page.request.get(await link.getAttribute("href"));
  const body = await response.body();
  assert(body.subarray(0, 4).toString() === "RIFF" && body.subarray(8, 12).toString() === "AVI ",
    "the download is not an AVI");
});

await check("a 16-bit array output shows its shape and offers .npy and TIFF", async () => {
  const action = page.locator('[data-thing="camera"] [data-action="capture_array"]');
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor();
  const text = await action.locator(".output").textContent();
  assert(text.includes("480 × 640 (y × x) uint16 in counts"), `output, with axes and unit: ${text}`);
  assert(text.includes("exposure_ms"), `its metadata: ${text}`);
  const tiff = action.locator(".output a", { hasText: "Download TIFF" });
  const response = await page.request.get(await tiff.getAttribute("href"));
  assert(response.headers()["content-type"] === "image/tiff", "not a TIFF");
  // A preview read from the .npy: a 640 × 480 heat map with the image's light and dark.
  const map = action.locator(".output canvas.heatmap");
  await map.waitFor({ timeout: 10000 });
  assert(await map.getAttribute("data-columns") === "640" && await map.getAttribute("data-rows") === "480",
    "the heat map has the array's size");
  const spread = await map.evaluate((canvas) => {
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    let [low, high] = [255, 0];
    for (let i = 0; i < data.length; i += 4) { low = Math.min(low, data[i]); high = Math.max(high, data[i]); }
    return high - low;
  });
  assert(spread > 100, `the preview shows the image's contrast (${spread})`);
});

await check("a running action can be cancelled", async () => {
  const action = page.locator('[data-thing="stage"] [data-action="home"]');
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="running"]').waitFor();
  await action.getByRole("button", { name: "Cancel" }).click();
  await action.locator('.status[data-status="cancelled"]').waitFor();
});

await check("the header's Stop everything button stops a Thing's running action", async () => {
  const action = page.locator('[data-thing="stage"] [data-action="home"]');
  assert(await page.locator('[data-thing="stage"] [data-action="stop_all"]').count() === 0,
    "stop_all is the header's button, not a form");
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="running"]').waitFor();
  await page.locator('[data-thing="stage"] button.stop-all').click();
  await action.locator('.status[data-status="cancelled"]').waitFor();
  const said = await page.textContent('[data-thing="stage"] .stop-all-result');
  assert(said === "Stopped 1 action.", `the button says: ${said}`);
});

await check("a browser following the TD's websocket form observes a property", async () => {
  // As a WoT consumer in a page would: the form's href, and its subprotocol if it names one
  // (Chromium refuses a socket whose handshake does not agree to a subprotocol it asked for).
  const value = await page.evaluate(async (tdUrl) => {
    const td = await (await fetch(tdUrl)).json();
    const form = td.properties.exposure_ms.forms.find((f) =>
      [].concat(f.op).includes("observeproperty") && f.href.startsWith("ws"));
    const socket = new WebSocket(form.href, form.subprotocol ? [form.subprotocol] : []);
    return await new Promise((resolve, reject) => {
      setTimeout(() => reject(new Error("no value within 5 s")), 5000);
      socket.onerror = () => reject(new Error("the websocket was refused"));
      socket.onopen = () => socket.send(JSON.stringify(
        { messageType: "addPropertyObservation", data: { exposure_ms: true } }));
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.messageType === "propertyStatus") {
          socket.close();
          resolve(message.data.exposure_ms);
        }
      };
    });
  }, `${base}/camera/`);
  assert(value === 20, `exposure_ms over the websocket: ${value}`);
});

await check("labels are titles, with the unit and the limits beside the value", async () => {
  const property = page.locator('[data-thing="camera"] [data-property="exposure_ms"]');
  const td = await server("/camera/");
  const label = await property.locator("label").textContent();
  assert(label === td.properties.exposure_ms.title, `label: ${label}`);
  assert((await property.locator(".unit").first().textContent()) === "ms", "no unit");
  const hint = await property.locator(".hint").first().textContent();
  assert(hint.includes("exposure_ms") && hint.includes("0.1 – 1000 ms"), `hint: ${hint}`);
  const x = page.locator('[data-thing="stage"] [data-action="move_relative"] .field').first();
  assert((await x.textContent()).includes("steps"), `an argument's unit: ${await x.textContent()}`);
  const home = await page.locator('[data-thing="stage"] [data-action="home"]').textContent();
  assert(!/\bnull\b/.test(home), `stray text: ${home}`);
});

await check("numbers are shown to a sensible precision", async () => {
  const response = await fetch(`${base}/camera/exposure_ms`, {
    method: "PUT", headers: { "content-type": "application/json" }, body: "24.11558769896393",
  });
  assert(response.status === 204, `PUT answered ${response.status}`);
  const output = page.locator('[data-thing="camera"] [data-property="exposure_ms"] output');
  await eventually(async () => (await output.textContent()) === "24.1156",
    `shown as ${await output.textContent()}`);
});

await check("doc comments are rendered as Markdown, not shown raw", async () => {
  const doc = page.locator('[data-thing="camera"] [data-action="line_profile"] .doc');
  assert((await doc.locator("strong").textContent()) === "middle", "no bold");
  assert((await doc.locator("code").first().textContent()) === "row", "no code");
  assert(!(await doc.textContent()).includes("**"), "raw Markdown shown");
});

await check("a list of numbers is drawn as a line plot with a CSV download", async () => {
  const action = page.locator('[data-thing="camera"] [data-action="line_profile"]');
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor();
  const plot = action.locator("svg.plot");
  await plot.waitFor();
  const points = Number(await plot.getAttribute("data-points"));
  const drawn = await plot.locator("polyline").evaluate((line) => line.points.numberOfItems);
  assert(points === 640 && drawn === 640, `${points} values, ${drawn} points drawn`);
  const [saved] = await Promise.all([page.waitForEvent("download"),
    action.getByRole("link", { name: "Download CSV" }).click()]);
  const csv = await (await import("node:fs/promises")).readFile(await saved.path(), "utf8");
  const lines = csv.trim().split("\n");
  assert(lines[0] === "index,value" && lines.length === 641, `${lines.length} lines: ${lines[0]}`);
});

await check("rows of numbers are drawn as a heat map", async () => {
  const action = page.locator('[data-thing="camera"] [data-action="thumbnail"]');
  await action.locator("button[type=submit]").click();
  const map = action.locator("canvas.heatmap");
  await map.waitFor();
  const size = await map.evaluate((canvas) => [canvas.width, canvas.height]);
  assert(size[0] === 32 && size[1] === 24, `heat map ${size}`);
});

const data = screenshot.replace(/\.png$/, "-data.png");
await page.locator('[data-thing="camera"] [data-action="line_profile"]').screenshot({ path: data });
console.log(`screenshot saved to ${data}`);

await check("an action's log box keeps a fixed height and scrolls", async () => {
  const log = page.locator('[data-thing="camera"] [data-action="line_profile"] .log');
  const style = await log.evaluate((node) => [getComputedStyle(node).maxHeight, getComputedStyle(node).overflowY]);
  assert(style[0] !== "none" && style[1] === "auto", `log box: ${style}`);
});

await check("an action form keeps its last values and runs again with one click", async () => {
  await page.reload();
  const action = page.locator('[data-thing="stage"] [data-action="move_relative"]');
  await action.locator("#stage-move_relative-x").waitFor();
  const kept = [await action.locator("#stage-move_relative-x").inputValue(),
    await action.locator("#stage-move_relative-y").inputValue()];
  assert(kept[0] === "120" && kept[1] === "40", `after a reload: ${kept}`);
  const [x, y, z] = await server("/stage/position");
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor();
  await action.getByRole("button", { name: "Run again" }).click();
  const expected = JSON.stringify([x + 240, y + 80, z]);
  await eventually(async () => JSON.stringify(await server("/stage/position")) === expected,
    `position after two more moves: ${JSON.stringify(await server("/stage/position"))}, not ${expected}`);
});

await check("the page is usable by keyboard: every input has a label", async () => {
  const unlabelled = await page.$$eval("input, select, textarea", (inputs) =>
    inputs.filter((input) => !(input.labels && input.labels.length)).map((input) => input.outerHTML));
  assert(unlabelled.length === 0, `unlabelled: ${unlabelled.join(", ")}`);
});

await page.screenshot({ path: screenshot, fullPage: true });
console.log(`screenshot saved to ${screenshot}`);

await check("the page fits a tablet's width", async () => {
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  const tablet = screenshot.replace(/\.png$/, "-tablet.png");
  await page.screenshot({ path: tablet, fullPage: true });
  console.log(`screenshot saved to ${tablet}`);
});

await check("no console errors and no failed requests", async () => {
  assert(problems.length === 0, problems.join("\n"));
});

await browser.close();
finish("browser");
