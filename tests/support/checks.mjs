// The small test harness the Node suites share (browser, node-wot): named checks that keep
// going after a failure, and one closing line. No dependencies, so any suite can import it.

const results = [];

/** Runs one named check; prints "ok" or "FAILED" with the error, and carries on. */
export async function check(name, test) {
  try {
    await test();
    results.push(true);
    console.log(`ok      ${name}`);
  } catch (error) {
    results.push(false);
    console.log(`FAILED  ${name}\n${error?.stack ?? error}`);
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Polls `probe` until it returns something truthy (and returns it), or fails after `timeout` ms. */
export async function eventually(probe, message, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Prints "<suite>: N passed, N failed" and exits, 1 if any check failed. */
export function finish(suite) {
  const passed = results.filter(Boolean).length;
  const failed = results.length - passed;
  console.log(`${suite}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
