// README's TypeScript example, as written there, against a real gateway.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { ROOT, startGateway, totp } from "./gateway.mjs";

const PACKAGE = path.join(ROOT, "clients/typescript");
const EXAMPLE = path.join(PACKAGE, "examples/quickstart.mjs");

let gateway;
before(async () => {
  gateway = await startGateway();
});
after(async () => {
  await gateway?.stop();
});

function readmeExample() {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const section = readme.split("### The agent's side: TypeScript")[1].split("\n### ")[0];
  return section.match(/```js\n([\s\S]+?)```/)[1];
}

test("README's example is examples/quickstart.mjs, and it runs without printing the code", async () => {
  assert.equal(readmeExample(), readFileSync(EXAMPLE, "utf8"));
  const key = await gateway.tenantKey();
  const { stdout } = await promisify(execFile)(process.execPath, [EXAMPLE], {
    cwd: PACKAGE,
    env: { PATH: process.env.PATH, OTPGATE_URL: gateway.url, OTPGATE_API_KEY: key },
    timeout: 60000,
  });
  assert.equal(stdout.trim(), "Code { source: 'totp', code: <6 characters> }");
  const now = Date.now() / 1000;
  for (const at of [now - 30, now, now + 30]) assert.equal(stdout.includes(totp("JBSWY3DPEHPK3PXP", at)), false);
});
