// A TypeScript client made from the microscope's /openapi.json by openapi-typescript (types)
// and openapi-fetch (calls), both pinned in package-lock.json. `tsc` compiles this file against
// the generated types before it runs, so the typed fields below are checked twice: by the
// compiler (an `unknown` or wrong type fails the build) and by the run against the server.
// Usage: node openapi_fetch.mjs http://127.0.0.1:PORT (after run.sh generated labthings.d.ts).
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/labthings.js";
import { assert, check, finish } from "../../support/checks.mjs";

const client = createClient<paths>({ baseUrl: (process.argv[2] ?? "").replace(/\/$/, "") });

await check("reads and writes a property", async () => {
  const written = await client.PUT("/camera/exposure_ms", { body: 31.5 });
  assert(written.response.status === 204, `PUT answered ${written.response.status}`);
  const { data } = await client.GET("/camera/exposure_ms");
  const exposure: number | undefined = data;
  assert(exposure === 31.5, `exposure_ms = ${exposure}`);
});

await check("a bad value is answered as a Problem naming the field", async () => {
  const { error, response } = await client.PUT("/camera/exposure_ms", { body: -1 });
  assert(response.status === 422, `PUT answered ${response.status}`);
  const problem: components["schemas"]["Problem"] | undefined = error;
  const names = problem?.["invalid-params"]?.map((param) => param.name);
  assert(JSON.stringify(names) === '["exposure_ms"]', `invalid-params: ${JSON.stringify(names)}`);
});

await check("an action answers its own invocation type with a typed output", async () => {
  const { data, response } = await client.POST("/stage/move_to", {
    params: { query: { wait: 10 } },
    body: { x: -250, y: 60, z: 3 },
  });
  assert(response.status === 200 && data !== undefined, `POST answered ${response.status}`);
  // Typed as the action's output, not `unknown`: this line does not compile otherwise.
  const position: number[] | null = data.output;
  const input: { x: number; y: number; z: number } = data.input;
  assert(data.status === "completed", `status ${data.status}`);
  assert(JSON.stringify(position) === "[-250,60,3]", `output ${JSON.stringify(position)}`);
  assert(input.x === -250, `input ${JSON.stringify(input)}`);
});

await check("a blob output is a typed link to the bytes", async () => {
  const { data } = await client.POST("/camera/capture", { params: { query: { wait: 10 } } });
  assert(data?.output, `no output: ${JSON.stringify(data)}`);
  const mediaType: string = data.output.media_type;
  assert(mediaType === "image/jpeg", `media_type ${mediaType}`);
  const image = new Uint8Array(await (await fetch(data.output.href)).arrayBuffer());
  assert(image[0] === 0xff && image[1] === 0xd8, "the blob is not a JPEG");
});

finish("openapi-typescript + openapi-fetch");
