// A GenICam camera in the web UI (issue 24), in headless Chromium against the genicam example
// serving Aravis's in-process fake camera (`--fake`): the live image, the camera's features as
// properties (an enumeration offered as a list of the camera's entries, with units), a pixel
// format chosen in the UI reaching the stream, and a capture as a JPEG.
// Usage: node genicam.test.mjs http://127.0.0.1:PORT SHOT.png
// Prints one line per check and "N passed, N failed"; exits 1 on failure.
import { chromium } from "playwright-core";
import { assert, check, eventually, finish } from "../support/checks.mjs";

const [base, screenshot] = [process.argv[2].replace(/\/$/, ""), process.argv[3]];
const server = async (path) => (await fetch(`${base}${path}`)).json();
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const problems = [];
const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
await page.goto(`${base}/`);
const camera = '[data-thing="camera"]';

await check("the camera's live image shows the fake camera's frames", async () => {
  const size = await eventually(async () => {
    const [w, h] = await page.$eval(`${camera} img.stream-image`, (img) => [img.naturalWidth, img.naturalHeight]);
    return w > 0 && [w, h];
  }, "no frame in the image");
  assert(size[0] === 512 && size[1] === 512, `the fake camera's 512x512, not ${size}`);
  await eventually(async () => (await server("/camera/acquiring")) === true, "the camera is not acquiring");
});

await check("the pixel format is a list of the camera's entries, and exposure has its unit", async () => {
  const options = await page.$$eval(`${camera} [data-property="pixel_format"] select option`,
    (nodes) => nodes.map((node) => node.textContent));
  for (const entry of ["Mono8", "Mono16", "RGB8", "BayerRG8"]) {
    assert(options.includes(entry), `${entry} is offered: ${options}`);
  }
  const exposure = await page.textContent(`${camera} [data-property="exposure_time"]`);
  assert(exposure.includes("µs"), `exposure's unit shown: ${exposure}`);
});

await check("choosing RGB8 in the UI gives colour frames in the image", async () => {
  const property = page.locator(`${camera} [data-property="pixel_format"]`);
  await property.locator("select").selectOption({ label: "RGB8" });
  await property.locator("button").click();
  await eventually(async () => (await server("/camera/pixel_format")) === "RGB8", "pixel_format is not RGB8");
  // The image turns colourful: the fake camera's RGB8 is a "jet" colour map of its ramp.
  await eventually(async () => page.$eval(`${camera} img.stream-image`, (img) => {
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let colourful = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 100) colourful += 1;
    }
    return colourful > data.length / 16;
  }), "the image did not turn colourful");
});

await check("capture gives a JPEG of the camera's frame", async () => {
  const response = await fetch(`${base}/camera/capture/run`, { method: "POST" });
  assert(response.status === 200, `status ${response.status}`);
  assert(response.headers.get("content-type") === "image/jpeg", response.headers.get("content-type"));
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert(bytes[0] === 0xff && bytes[1] === 0xd8, "a JPEG");
});

await page.evaluate(() => window.scrollTo(0, 0));
await page.screenshot({ path: screenshot, fullPage: false });
await check("no errors in the page", async () => {
  assert(problems.length === 0, problems.join("; "));
});
await browser.close();
finish("browser (GenICam camera)");
