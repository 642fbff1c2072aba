// The Eclipse node-wot consumer (0.9.2) consumes our Thing Descriptions and reads, writes,
// invokes, observes a property and subscribes to an event (both over Server-Sent Events, the
// forms with `subprotocol: "sse"`), unmodified. Usage: node node_wot.mjs http://127.0.0.1:PORT
// Prints one line per check and a closing "N passed, N failed" line; exits 1 on any failure.
import core from "@node-wot/core";
import bindingHttp from "@node-wot/binding-http";
import { assert, check, eventually, finish } from "../../support/checks.mjs";

const { Servient } = core;
const { HttpClientFactory, HttpsClientFactory } = bindingHttp;

const base = process.argv[2].replace(/\/$/, "");
const servient = new Servient();
servient.addClientFactory(new HttpClientFactory(null));
// Through an HTTPS reverse proxy (the deploy suite); the CA comes from NODE_EXTRA_CA_CERTS.
servient.addClientFactory(new HttpsClientFactory(null));
const WoT = await servient.start();
// requestThingDescription validates the TD (against TD 1.0, where ours carries both contexts).
const stage = await WoT.consume(await WoT.requestThingDescription(`${base}/stage/`));
const camera = await WoT.consume(await WoT.requestThingDescription(`${base}/camera/`));

await check("reads a property", async () => {
  const exposure = await (await camera.readProperty("exposure_ms")).value();
  assert(typeof exposure === "number" && exposure > 0, `exposure_ms = ${exposure}`);
});

await check("writes a property and reads it back", async () => {
  await stage.writeProperty("position", [7, 8, 9]);
  const position = await (await stage.readProperty("position")).value();
  assert(JSON.stringify(position) === "[7,8,9]", `position = ${JSON.stringify(position)}`);
});

await check("a bad value is refused", async () => {
  let refused = false;
  try {
    await camera.writeProperty("exposure_ms", 0.01);
  } catch (error) {
    refused = true;
  }
  assert(refused, "writing 0.01 succeeded");
  const exposure = await (await camera.readProperty("exposure_ms")).value();
  assert(exposure !== 0.01, "the value changed");
});

await check("invokes an action and follows its invocation to the output", async () => {
  // Our actions are asynchronous (TD: synchronous false): the response is the invocation.
  const output = await stage.invokeAction("move_relative", { x: 1, y: 1 });
  const invocation = JSON.parse(Buffer.from(await output.arrayBuffer()).toString());
  assert(["pending", "running", "completed"].includes(invocation.status), `status ${invocation.status}`);
  let state = invocation;
  for (let i = 0; i < 100 && state.status !== "completed"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    state = await (await fetch(invocation.href)).json();
  }
  assert(state.status === "completed", `ended ${state.status}`);
  assert(JSON.stringify(state.output) === "[8,9,9]", `output ${JSON.stringify(state.output)}`);
});

// The second `invokeaction` form of each action (`.../run`) answers with the output itself once
// the action has finished; a consumer picks it by its index, found by its declared response.
function runFormIndex(thing, action) {
  const forms = thing.getThingDescription().actions[action].forms;
  const index = forms.findIndex((form) => form.op.includes("invokeaction") && form.response);
  assert(index > 0, `no one-call form for ${action}: ${JSON.stringify(forms)}`);
  return index;
}

await check("invokes an action in one call and gets its output from value()", async () => {
  const output = await stage.invokeAction(
    "move_to",
    { x: 31, y: 32, z: 33 },
    { formIndex: runFormIndex(stage, "move_to") },
  );
  const position = await output.value();
  assert(JSON.stringify(position) === "[31,32,33]", `value() = ${JSON.stringify(position)}`);
});

await check("a failing action invoked in one call is an error", async () => {
  let refused;
  try {
    await stage.invokeAction(
      "move_to",
      { x: 10000000, y: 0, z: 0 },
      { formIndex: runFormIndex(stage, "move_to") },
    );
  } catch (error) {
    refused = error;
  }
  assert(refused && /Conflict/.test(refused.message), `moved beyond the travel: ${refused}`);
});

await check("observes a property and receives a change made by another client", async () => {
  const seen = [];
  const subscription = await stage.observeProperty("position", async (data) => {
    seen.push(JSON.stringify(await data.value()));
  });
  const response = await fetch(`${base}/stage/position`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: "[11, 12, 13]",
  });
  assert(response.status === 204, `PUT answered ${response.status}`);
  await eventually(() => seen.includes("[11,12,13]"), `values seen: ${seen}`);
  await subscription.stop();
});

await check("subscribes to an event and receives it", async () => {
  const moves = [];
  const subscription = await stage.subscribeEvent("moved", async (data) => {
    moves.push(JSON.stringify(await data.value()));
  });
  const response = await fetch(`${base}/stage/move_to?wait=10`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ x: 21, y: 22, z: 23 }),
  });
  assert(response.status === 200, `move_to answered ${response.status}`);
  await eventually(() => moves.includes("[21,22,23]"), `events seen: ${moves}`);
  await subscription.stop();
});

await servient.shutdown();
finish("node-wot");
