// An instrument left running (issue 30), in headless Chromium against the microscope example:
// the camera's sensor temperature keeps a history, drawn by the vendored uPlot and updated
// live; the camera's health badge goes faulted when the sensor overheats, refuses a capture,
// and clears.
// Usage: node health-trends.test.mjs http://127.0.0.1:PORT TREND.png FAULT.png
// Prints one line per check and "N passed, N failed"; exits 1 on failure.
import { chromium } from "playwright-core";
import { assert, check, eventually, finish } from "../support/checks.mjs";

const [base, screenshot, faultShot] = [process.argv[2].replace(/\/$/, ""), process.argv[3], process.argv[4]];
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const problems = [];
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
await page.goto(`${base}/`);
const trend = '[data-thing="camera"] .trends';

await check("the camera's sensor temperature is drawn as a trend, from its history", async () => {
  await page.waitForSelector(`${trend} .trend-plot canvas`, { timeout: 15000 });
  assert(await page.isVisible(trend), "the Trends section is shown");
  // Two properties keep a history: one plot, one axis per unit.
  const choices = await page.$$eval(`${trend} [data-trend]`, (boxes) => boxes.map((b) => b.dataset.trend));
  assert(JSON.stringify(choices) === '["exposure_ms","sensor_temperature"]', `choices: ${choices}`);
  const legend = await page.textContent(`${trend} .u-legend`);
  assert(legend.includes("°C") && legend.includes("ms"), `the legend shows both units: ${legend}`);
  const axes = await page.$$eval(`${trend} .u-axis`, (nodes) => nodes.length);
  assert(axes === 3, `a time axis and one per unit: ${axes}`);
  // A plot with no line would be blank or grey (axes, grid): some of its pixels are the
  // series' colours.
  const coloured = await page.$eval(`${trend} .trend-plot canvas`, (canvas) => {
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = data.subarray(i, i + 4);
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 80) n += 1;
    }
    return n;
  });
  assert(coloured > 50, `the lines are drawn (${coloured} pixels of their colours)`);
});

await check("the plot updates live, with the server's timestamps", async () => {
  const before = Number(await page.getAttribute(`${trend} .trend-plot`, "data-points"));
  await eventually(async () => Number(await page.getAttribute(`${trend} .trend-plot`, "data-points")) >= before + 10,
    "ten more samples within the wait");
  // The newest point is the server's newest sample.
  const history = await (await fetch(`${base}/camera/sensor_temperature/history`)).json();
  const serverNewest = Date.parse(history.samples.at(-1).timestamp) / 1000;
  const plotted = await page.$eval(`${trend} .trend-plot`, (figure) => figure.dataset.newest);
  assert(Math.abs(Number(plotted) - serverNewest) < 5, `plotted ${plotted}, server ${serverNewest}`);
});

await check("a property can be left out of the plot", async () => {
  await page.uncheck(`${trend} [data-trend="exposure_ms"]`);
  await eventually(async () => !(await page.textContent(`${trend} .u-legend`)).includes("ms"), "exposure_ms left out");
  assert((await page.textContent(`${trend} .u-legend`)).includes("°C"), "the temperature stays");
});

await check("the range and the CSV link", async () => {
  await page.selectOption(`${trend} .trend-range`, "60");
  await page.waitForSelector(`${trend} .trend-plot canvas`);
  const href = await page.getAttribute(`${trend} [data-trend="sensor_temperature"] ~ a.download, ${trend} label:has([data-trend="sensor_temperature"]) a.download`, "href");
  const response = await fetch(new URL(href, `${base}/`));
  const text = await response.text();
  assert(text.startsWith("timestamp,sensor_temperature [°C]"), text.slice(0, 80));
  await page.locator(`${trend}`).screenshot({ path: screenshot });
  assert(!(await page.isVisible('[data-thing="stage"] .trends')), "no Trends section for a Thing without history");
  assert(problems.length === 0, problems.join("; "));
});

const badge = '[data-thing="camera"] .thing-header .health';
const put = (path, value) => fetch(`${base}/camera/${path}`, {
  method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(value) });
await check("the camera's health badge says OK, and faulted when the sensor overheats", async () => {
  await eventually(async () => (await page.getAttribute(badge, "data-health")) === "ok", "OK at first");
  assert(!(await page.isVisible('[data-thing="camera"] .clear-fault')), "no Clear button while OK");
  // Long exposures at full gain warm the simulated sensor past its 45 °C limit in about a second.
  assert((await put("exposure_ms", 1000)).status === 204, "exposure set");
  assert((await put("gain", 16)).status === 204, "gain set");
  await eventually(async () => (await page.getAttribute(badge, "data-health")) === "faulted", "faulted", 20000);
  const text = await page.textContent(badge);
  assert(text.startsWith("Faulted: the sensor is at") && text.includes("45 °C limit"), text);
  const refused = await fetch(`${base}/camera/capture`, { method: "POST" });
  assert(refused.status === 409, `a capture is refused while faulted: ${refused.status}`);
  await page.locator('[data-thing="camera"] .thing-header').screenshot({ path: faultShot });
});

await check("cooled and cleared from the badge's button, the camera is OK again", async () => {
  assert((await put("exposure_ms", 10)).status === 204 && (await put("gain", 1)).status === 204, "back to normal");
  await eventually(async () => {
    const t = await (await fetch(`${base}/camera/sensor_temperature`)).json();
    return t < 40;
  }, "the sensor cools below 40 °C", 30000);
  await page.click('[data-thing="camera"] .clear-fault');
  await eventually(async () => (await page.getAttribute(badge, "data-health")) === "ok", "OK after clearing");
  assert(!(await page.isVisible('[data-thing="camera"] .clear-fault')), "the Clear button goes");
  const capture = await fetch(`${base}/camera/capture`, { method: "POST" });
  assert(capture.status === 201, `a capture runs again: ${capture.status}`);
  assert(problems.length === 0, problems.join("; "));
});

await browser.close();
finish("health and trends");
