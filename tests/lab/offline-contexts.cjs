// Preloaded into the directory's JSON-LD helper (NODE_OPTIONS=--require) by tests/lab/run.sh.
//
// domus-tdd-api turns each registered TD into RDF with jsonld.js, which fetches every
// `@context` URL it does not ship. It ships the TD 1.1 context, not the TD 1.0 one that our TDs
// name first (node-wot 0.9.2 validates against TD 1.0 and needs it). CI has no internet, so this
// answers the W3C context URLs listed in OFFLINE_CONTEXTS (a JSON object: URL -> local file)
// from files; every other request goes out as usual. A directory with internet needs nothing.
const fs = require("fs");

const contexts = JSON.parse(process.env.OFFLINE_CONTEXTS || "{}");
const fetchOnline = globalThis.fetch;
globalThis.fetch = async function fetchWithOfflineContexts(input, init) {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (Object.hasOwn(contexts, url)) {
    return new Response(fs.readFileSync(contexts[url]), {
      headers: { "content-type": "application/ld+json" },
    });
  }
  return fetchOnline(input, init);
};
