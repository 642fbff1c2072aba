// node-wot 0.9.2, unmodified, finds Things through a W3C WoT Thing Description Directory and
// reads a property through a TD it got from there.
// Usage: node explore_directory.mjs DIRECTORY_TD_URL ID...
//   DIRECTORY_TD_URL: a TD of the directory (our server's /lab_view/directory: domus-tdd-api's own TD
//   names only the TD 1.1 context, which node-wot 0.9.2's validator refuses); its `things`
//   property reads the directory's /things.
//   ID...: the Thing ids that must be found.
import core from "@node-wot/core";
import bindingHttp from "@node-wot/binding-http";
import { assert, check, finish } from "../../support/checks.mjs";

const [directory, ...ids] = process.argv.slice(2);
const servient = new core.Servient();
servient.addClientFactory(new bindingHttp.HttpClientFactory(null));
const WoT = await servient.start();

const found = new Map();
await check(`exploreDirectory finds the ${ids.length} Things registered`, async () => {
  // domus-tdd-api 1.0.2 answers a listing with a 500 when a registration lands while it
  // lists (it reads the TDs and their contexts in two queries): ask again, a few times.
  let discovery;
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    found.clear();
    discovery = await WoT.exploreDirectory(directory);
    for await (const td of discovery) found.set(td.id, td);
    if (!String(discovery.error?.message ?? "").includes("Server error")) break;
    console.log(`        attempt ${attempt}: ${discovery.error.message}; again`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const missing = ids.filter((id) => !found.has(id));
  assert(missing.length === 0, `not found: ${missing.join(", ")} (found ${[...found.keys()].join(", ")}; ${discovery.error?.message ?? "no error"})`);
});

await check("a property is read through a TD from the directory", async () => {
  const td = [...found.values()].find((t) => t.properties?.position && ids.includes(t.id));
  assert(td, "a stage TD from the directory");
  const thing = await WoT.consume(td);
  const position = await (await thing.readProperty("position")).value();
  assert(typeof position === "object" && position !== null, `position: ${JSON.stringify(position)}`);
  console.log(`        ${td.title} (${td.id}): position ${JSON.stringify(position)}`);
});

await servient.shutdown();
finish("node-wot through the directory");
