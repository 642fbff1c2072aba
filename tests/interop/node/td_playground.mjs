// Every Thing Description the microscope serves, through the W3C WoT TD playground's own checks
// (@thing-description-playground/core 1.4.0 and /assertions 1.5.0, pinned): JSON Schema
// validation, the "defaults" validation (every default stated), the additional checks, and the
// assertion tests. Zero warnings and zero failed assertions pass. JSON-LD expansion is left out:
// it fetches the @context documents from w3.org, and CI has no internet.
// Usage: node td_playground.mjs http://127.0.0.1:PORT
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { assert, check, finish } from "../../support/checks.mjs";

const require = createRequire(import.meta.url);
const { tdValidator } = require("@thing-description-playground/core");
const { tdAssertions } = require("@thing-description-playground/assertions");

// The assertions package reads the core package's TD schema from a nested node_modules folder;
// npm installs core once, beside it.
const coreDir = path.dirname(require.resolve("@thing-description-playground/core/package.json"));
const nested = `node_modules${path.sep}@thing-description-playground${path.sep}core${path.sep}`;
function load(file) {
  const at = file.indexOf(nested);
  return readFile(at < 0 ? file : path.join(coreDir, file.slice(at + nested.length)), "utf8");
}

const base = process.argv[2].replace(/\/$/, "");
const descriptions = await (await fetch(`${base}/thing_descriptions/`)).json();
assert(Object.keys(descriptions).length > 0, "no Thing Descriptions served");

for (const [name, td] of Object.entries(descriptions)) {
  const text = JSON.stringify(td);
  await check(`${name}: the playground's validation passes with no warning`, async () => {
    const logs = [];
    const { report, details } = await tdValidator(text, (line) => logs.push(line), {
      checkDefaults: true,
      checkJsonLd: false,
    });
    const notPassed = Object.entries({ ...report, ...details }).filter(
      ([key, result]) => !["passed", "not-impl", null].includes(result) && key !== "jsonld",
    );
    assert(notPassed.length === 0, `${JSON.stringify(notPassed)}\n${logs.join("\n")}`);
  });
  await check(`${name}: no assertion test fails`, async () => {
    const results = await tdAssertions([text], load, () => {});
    const failed = results.filter((result) => result.Status === "fail");
    const passed = results.filter((result) => result.Status === "pass").length;
    assert(failed.length === 0, JSON.stringify(failed, null, 1));
    assert(passed > 100, `only ${passed} assertions passed`);
  });
}

finish("TD playground");
