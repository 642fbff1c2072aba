// The web UI's trend plot (issue 30) in headless Chromium, against the microscope example: the
// camera's sensor temperature keeps a history, drawn by the vendored uPlot and updated live.
// Usage: node trends.test.mjs http://127.0.0.1:PORT SCREENSHOT.png
// Prints one line per check and "N passed, N failed"; exits 1 on failure.
import { chromium } from "playwright-core";
import { assert, check, eventually, finish } from "../support/checks.mjs";

const [base, screenshot] = [process.argv[2].replace(/\/$/, ""), process.argv[3]];
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
  const choices = await page.$$eval(`${trend} [data-trend]`, (boxes) => boxes.map((b) => b.dataset.trend));
  assert(JSON.stringify(choices) === '["sensor_temperature"]', `choices: ${choices}`);
  const legend = await page.textContent(`${trend} .u-legend`);
  assert(legend.includes("°C"), `the legend shows the unit: ${legend}`);
  // A plot with no line would be blank: some of its pixels are the series' colour.
  const coloured = await page.$eval(`${trend} .trend-plot canvas`, (canvas) => {
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 2] > 150 && data[i] < 60 && data[i + 3] > 0) n += 1;
    return n;
  });
  assert(coloured > 50, `the line is drawn (${coloured} pixels of its colour)`);
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

await check("the range and the CSV link", async () => {
  await page.selectOption(`${trend} .trend-range`, "60");
  await page.waitForSelector(`${trend} .trend-plot canvas`);
  const href = await page.getAttribute(`${trend} a.download`, "href");
  const response = await fetch(new URL(href, `${base}/`));
  const text = await response.text();
  assert(text.startsWith("timestamp,sensor_temperature [°C]"), text.slice(0, 80));
  await page.locator(`${trend}`).screenshot({ path: screenshot });
  assert(!(await page.isVisible('[data-thing="stage"] .trends')), "no Trends section for a Thing without history");
  assert(problems.length === 0, problems.join("; "));
});

await browser.close();
finish("trends");
