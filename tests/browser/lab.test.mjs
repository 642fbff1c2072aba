// The lab view in headless Chromium (Debian's, driven by playwright-core): one page showing the
// Things of two microscope servers (this one's, the other's through its /.well-known/wot with
// CORS, and both through the directory), each with whether it answers, key properties and a
// live stream thumbnail.
// Usage: node lab.test.mjs LAB_URL OTHER_SERVER_URL SCREENSHOT
import { chromium } from "playwright-core";
import { assert, check, eventually, finish } from "../support/checks.mjs";

const [labUrl, otherServer, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console: ${message.text()}`);
});

const here = new URL(labUrl).host;
const there = new URL(otherServer).host;

await check("the lab page lists both servers' Things, each once", async () => {
  await page.goto(labUrl);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  const cards = await page.$$eval(".lab-card", (nodes) => nodes.map((n) => ({
    title: n.querySelector("h2").textContent,
    id: n.dataset.id,
    origin: n.querySelector(".origin").textContent,
  })));
  const hosts = new Set(cards.map((c) => c.origin.split(" · ")[1]).map((base) => new URL(base).host));
  assert(hosts.has(here) && hosts.has(there), `servers shown: ${[...hosts].join(", ")}`);
  assert(cards.length === 4, `4 Things (2 per server): ${JSON.stringify(cards)}`);
  assert(new Set(cards.map((c) => c.id)).size === 4, "each Thing once");
  const notices = await page.$$eval(".notices p", (nodes) => nodes.map((n) => n.textContent));
  assert(notices.length === 0, `notices: ${notices.join(" | ")}`);
});

await check("every Thing answers, with its key properties read", async () => {
  await eventually(() => page.$$eval(".lab-card .answer",
    (nodes) => nodes.every((n) => n.textContent === "answers")), "not every Thing answers", 15000);
  const values = await page.$$eval(".lab-card dd", (nodes) => nodes.map((n) => n.textContent));
  assert(values.length > 0 && values.every((v) => v !== "…" && v !== "—"), `values: ${values.join(", ")}`);
});

await check("live stream thumbnails from both servers show frames, and keep changing", async () => {
  const thumbnails = () => page.$$eval(".lab-card .thumbnails img", (imgs) => imgs.map((img) => ({
    host: new URL(img.src).host, width: img.naturalWidth,
  })));
  await eventually(async () => {
    const shown = (await thumbnails()).filter((t) => t.width > 0);
    return new Set(shown.map((t) => t.host)).size === 2;
  }, "a stream from each server", 15000);
  // Live: the picture of a thumbnail differs a second later (the simulated image drifts).
  const picture = () => page.evaluate(() => {
    // One from this page's own server: a cross-origin image would taint the canvas.
    const img = [...document.querySelectorAll(".lab-card .thumbnails img")]
      .find((candidate) => new URL(candidate.src).origin === location.origin);
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 48;
    canvas.getContext("2d").drawImage(img, 0, 0, 64, 48);
    return canvas.toDataURL();
  });
  const before = await picture();
  await eventually(async () => (await picture()) !== before, "the thumbnail is live", 10000);
});

await check("no page errors", async () => {
  assert(problems.length === 0, problems.join("\n"));
});

await check("a property that cannot be read shows why, and its Thing still answers", async () => {
  await page.route("**/camera/gain", (route) => route.fulfill({
    status: 503, contentType: "application/problem+json",
    body: JSON.stringify({ title: "Service Unavailable", status: 503, detail: "the camera is busy" }),
  }));
  await page.goto(labUrl);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  const gain = await eventually(() => page.evaluate(() => {
    const dt = [...document.querySelectorAll(".lab-card dt")].find((d) => d.textContent === "gain");
    const dd = dt?.nextElementSibling;
    return dd && dd.textContent === "—" ? { title: dd.title, answer: dd.closest(".lab-card").querySelector(".answer").textContent } : null;
  }), "the unreadable property is marked", 15000);
  assert(gain.title.includes("503") && gain.title.includes("the camera is busy"), `why: ${gain.title}`);
  assert(gain.answer === "answers", `its Thing: ${gain.answer}`);
  await page.unroute("**/camera/gain");
});

await check("a server that does not answer is said so, and the rest still shows", async () => {
  // The same page with one more server in its sources, which nothing serves.
  await page.route("**/lab_view/sources", async (route) => {
    const response = await route.fetch();
    const sources = await response.json();
    sources.servers.push("http://127.0.0.1:9/");
    await route.fulfill({ response, json: sources });
  });
  await page.goto(labUrl);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  const notices = await page.$$eval(".notices p", (nodes) => nodes.map((n) => n.textContent));
  assert(notices.some((n) => n.includes("127.0.0.1:9") && n.includes("cannot be listed")), `notices: ${notices}`);
  assert((await page.$$(".lab-card")).length === 4, "the others are still shown");
  await page.unroute("**/lab_view/sources");
  await page.goto(labUrl);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  await eventually(() => page.$$eval(".lab-card .thumbnails img",
    (imgs) => imgs.length > 0 && imgs.every((img) => img.naturalWidth > 0)), "thumbnails", 15000);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`        screenshot: ${screenshot}`);
});

await browser.close();
finish("lab view");
