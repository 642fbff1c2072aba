// On a lab network, in headless Chromium (Debian's, driven by playwright-core):
//  1. the web UI through nginx under /lab/ on HTTPS: a live stream, a property write, an action;
//  2. one page with 10 live streams and a websocket, straight against the server's own HTTPS
//     port: every image keeps updating (HTTP/2 carries them all on one connection);
//  3. the same page over plain HTTP/1.1, where Chromium opens at most 6 connections per host:
//     what it shows is printed, not asserted (it is the browser's limit, not ours).
// Usage: node deploy.test.mjs PROXY_URL HTTPS_URL HTTP_URL SCREENSHOT_FOLDER
import { chromium } from "playwright-core";
import { assert, check, eventually, finish } from "../support/checks.mjs";

const [proxy, secure, plain, folder] = process.argv.slice(2).map((url) => url.replace(/\/$/, ""));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
// The certificate is self-signed (its fingerprint is checked by the suite).
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1000 } });

const problems = [];
const watch = (page) => {
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
};

const ui = await context.newPage();
watch(ui);
const server = async (path) => (await ui.request.get(`${proxy}${path}`)).json();

await check("through nginx: the UI loads under /lab/ with a live stream", async () => {
  await ui.goto(`${proxy}/`);
  await ui.waitForSelector('[data-thing="camera"] img.stream-image');
  await eventually(() => ui.evaluate(() =>
    document.querySelector('[data-thing="camera"] img.stream-image').naturalWidth > 0), "no frame shown");
  const src = await ui.getAttribute('[data-thing="camera"] img.stream-image', "src");
  assert(src.startsWith(`${proxy}/camera/`), `stream from ${src}`);
});

await check("through nginx: a property set in the UI changes on the server", async () => {
  const property = ui.locator('[data-thing="camera"] [data-property="exposure_ms"]');
  await property.locator("input").fill("25");
  await property.locator("button").click();
  await eventually(async () => (await server("/camera/exposure_ms")) === 25, "exposure_ms is not 25");
  await eventually(async () => (await property.locator("output").textContent()) === "25", "no live value");
});

await check("through nginx: an action runs to completion", async () => {
  const [x, y, z] = await server("/stage/position");
  const action = ui.locator('[data-thing="stage"] [data-action="move_relative"]');
  await action.locator("#stage-move_relative-x").fill("30");
  await action.locator("#stage-move_relative-y").fill("10");
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor();
  const output = await action.locator(".output").textContent();
  const expected = JSON.stringify([x + 30, y + 10, z]);
  assert(output.includes(expected), `output: ${output}, expected ${expected}`);
});
await ui.screenshot({ path: `${folder}/deploy-ui.png` });
await ui.close();

/** Opens `origin`'s /things/ page, replaces it with 10 stream images and a websocket, and
 * samples each image's pixels for 6 s; returns how many times each image changed. */
async function tenStreams(origin, screenshot) {
  const page = await context.newPage();
  watch(page);
  await page.goto(`${origin}/things/`);
  const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  await page.evaluate((origin) => {
    document.body.innerHTML = "";
    for (let i = 0; i < 10; i++) {
      const image = document.createElement("img");
      // Ten distinct URLs (the stream ignores parameters it does not know), so that the
      // browser opens ten streams rather than sharing one.
      image.src = `${origin}/camera/mjpeg_stream?viewer=${i}`;
      image.width = 192;
      document.body.append(image);
    }
    window.socket = new WebSocket(`${origin.replace(/^http/, "ws")}/stage/ws`);
  }, origin);
  const changes = new Array(10).fill(0);
  let previous = null;
  for (let sample = 0; sample < 12; sample++) {
    await page.waitForTimeout(500);
    const hashes = await page.evaluate(() => Array.from(document.images, (image) => {
      if (!image.naturalWidth) return null;
      const canvas = document.createElement("canvas");
      canvas.width = 64;
      canvas.height = 48;
      const context = canvas.getContext("2d");
      context.drawImage(image, 0, 0, 64, 48);
      const data = context.getImageData(0, 0, 64, 48).data;
      let hash = 0;
      for (let i = 0; i < data.length; i++) hash = (hash * 31 + data[i]) | 0;
      return hash;
    }));
    if (previous) hashes.forEach((hash, i) => { if (hash !== null && hash !== previous[i]) changes[i]++; });
    previous = hashes;
  }
  const socket = await page.evaluate(() => window.socket.readyState);
  await page.screenshot({ path: screenshot });
  await page.close();
  return { protocol, changes, socketOpen: socket === 1 };
}

await check("HTTPS with HTTP/2: 10 live streams and a websocket on one page all keep updating", async () => {
  const { protocol, changes, socketOpen } = await tenStreams(secure, `${folder}/deploy-h2.png`);
  console.log(`        ${protocol}: frames changed per image in 6 s: ${changes.join(" ")}`);
  assert(protocol === "h2", `the page came over ${protocol}`);
  assert(changes.every((count) => count >= 4), `some images stalled: ${changes}`);
  assert(socketOpen, "the websocket is not open");
});

await check("plain HTTP/1.1: the same page, for comparison (Chromium's 6 connections per host)", async () => {
  const { protocol, changes, socketOpen } = await tenStreams(plain, `${folder}/deploy-h1.png`);
  const live = changes.filter((count) => count >= 4).length;
  console.log(`        ${protocol}: frames changed per image in 6 s: ${changes.join(" ")}; `
    + `${live} of 10 images live, websocket ${socketOpen ? "open" : "not open"}`);
  assert(protocol === "http/1.1", `the page came over ${protocol}`);
});

await check("no request failed and no page error", async () => {
  assert(problems.length === 0, problems.join("\n"));
});

await browser.close();
finish("deploy browser");
