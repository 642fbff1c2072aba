// The web UI and the API browser on a server with access tokens (tests/browser/auth.json), in
// headless Chromium. Usage: node auth.test.mjs http://127.0.0.1:PORT
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.
import { chromium } from "playwright-core";
import { assert, check, eventually, finish } from "../support/checks.mjs";

const base = process.argv[2].replace(/\/$/, "");
const OPERATOR = "browser-operator-token";
const VIEWER = "browser-viewer-token";
const server = async (path) =>
  (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${OPERATOR}` } })).json();

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});

/** A fresh tab (its own sessionStorage) that records every refused request. */
async function freshPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.refused = [];
  page.on("response", (response) => {
    if (response.status() === 401 || response.status() === 403) {
      page.refused.push(`${response.status()} ${response.request().method()} ${response.url()}`);
    }
  });
  return page;
}
const imageShown = (page, selector) => eventually(() => page.evaluate((selector) =>
  document.querySelector(selector)?.naturalWidth > 0, selector), `no image in ${selector}`);

await check("without a token the page asks for one, then shows everything with it", async () => {
  const page = await freshPage();
  await page.goto(`${base}/`);
  const alert = await page.locator(".token-form [role=alert]").textContent();
  assert(alert.includes("needs an access token"), `alert: ${alert}`);
  await page.getByLabel("Access token").fill(OPERATOR);
  await page.getByRole("button", { name: "Use token" }).click();
  await page.waitForSelector('[data-thing="camera"] img.stream-image');
  // The stream (an <img>), the websocket (live values) and fetches all carry the token.
  await imageShown(page, '[data-thing="camera"] img.stream-image');
  await eventually(async () => (await page.locator(
    '[data-thing="stage"] [data-property="position"] output').textContent()).startsWith("["),
  "no live stage position");
  const property = page.locator('[data-thing="camera"] [data-property="exposure_ms"]');
  await property.locator("input").fill("25");
  await property.locator("button").click();
  await eventually(async () => (await server("/camera/exposure_ms")) === 25, "exposure_ms is not 25");
  const action = page.locator('[data-thing="camera"] [data-action="capture"]');
  await action.locator("button[type=submit]").click();
  await action.locator('.status[data-status="completed"]').waitFor();
  await imageShown(page, '[data-thing="camera"] [data-action="capture"] .output img');
  // Only the first look, before the token, was refused.
  assert(page.refused.length === 1 && page.refused[0].includes("thing_descriptions"),
    page.refused.join("\n"));
  // The token lasts for the tab: a reload needs no new entry.
  await page.reload();
  await imageShown(page, '[data-thing="camera"] img.stream-image');
  assert(page.refused.length === 1, page.refused.join("\n"));
  await page.context().close();
});

await check("a wrong token is refused and asked for again", async () => {
  const page = await freshPage();
  await page.goto(`${base}/`);
  await page.getByLabel("Access token").fill("not-a-token-at-all");
  await page.getByRole("button", { name: "Use token" }).click();
  await eventually(async () => (await page.locator(".token-form [role=alert]").textContent())
    .includes("not accepted"), "no refusal shown");
  await page.context().close();
});

await check("a link with ?access_token= opens the page and the token leaves the address bar", async () => {
  const page = await freshPage();
  await page.goto(`${base}/?access_token=${OPERATOR}`);
  await imageShown(page, '[data-thing="camera"] img.stream-image');
  assert(!page.url().includes("access_token"), `address: ${page.url()}`);
  assert(page.refused.length === 0, page.refused.join("\n"));
  await page.context().close();
});

await check("a read-only token shows the server's refusal of a write", async () => {
  const page = await freshPage();
  await page.goto(`${base}/?access_token=${VIEWER}`);
  const property = page.locator('[data-thing="camera"] [data-property="exposure_ms"]');
  await property.locator("input").fill("30");
  await property.locator("button").click();
  const error = await eventually(async () => await property.locator(".error").textContent(),
    "no error shown");
  assert(error.includes("read-only"), `error: ${error}`);
  assert((await server("/camera/exposure_ms")) !== 30, "the write was applied");
  await page.context().close();
});

await check("the stream viewer page passes its ?access_token= on to the image", async () => {
  const page = await freshPage();
  await page.goto(`${base}/camera/lores_mjpeg_stream/viewer?access_token=${VIEWER}`);
  await imageShown(page, "img");
  const snapshot = await page.locator("nav a[download]").getAttribute("href");
  assert(snapshot.includes(`access_token=${VIEWER}`), `snapshot link: ${snapshot}`);
  await page.context().close();
});

await check("the API browser offers to enter a token, and uses it", async () => {
  const page = await freshPage();
  await page.goto(`${base}/docs/`);
  await page.locator("button.authorize").first().click();
  await page.locator(".modal-ux input").first().fill(OPERATOR);
  await page.locator(".modal-ux button.authorize").first().click();
  await page.locator(".modal-ux button.close-modal").first().click();
  // Try one read from the API browser: it must succeed with the token.
  const operation = page.locator("[id$='-camera_read_exposure_ms']").first();
  await operation.locator(".opblock-summary").click();
  await operation.getByRole("button", { name: "Try it out" }).click();
  await operation.getByRole("button", { name: "Execute" }).click();
  const status = await eventually(async () => (await operation.locator(".live-responses-table tbody .response-col_status").first().textContent().catch(() => "")).trim(), "no response shown");
  assert(status.startsWith("200"), `status ${status}`);
  await page.context().close();
});

await browser.close();
finish("browser (access tokens)");
