// The Client against a real `otpgate serve` on loopback: errors, codes and their
// correlation, logins, links, backup codes, interactions, approvals, retries,
// webhooks, what never shows in a log line, and README's example.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { inspect, promisify } from "node:util";

import { Webhook as Signer } from "standardwebhooks";

import {
  ApiError,
  Client,
  CodeTimeout,
  ConnectionFailed,
  Expired,
  Invalid,
  LinkTimeout,
  LoginInProgress,
  NoBackupCodes,
  NotFound,
  ServerClock,
  Unauthorized,
  WebhookVerificationError,
  verifyWebhook,
} from "../dist/index.js";
import { ROOT, eventually, freePort, mailCode, sendMail, sleep, startGateway, totp } from "./gateway.mjs";

const FAST = { attempts: 4, backoff: 0.02, maxBackoff: 0.1 };
const SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

let gateway;
let key;
let client;

before(async () => {
  gateway = await startGateway();
  key = await gateway.tenantKey();
  client = new Client(gateway.url, key, { retry: FAST });
});

after(async () => {
  await gateway?.stop();
});

/** Ask the gateway often for a while, so its clock is known to a few milliseconds. */
async function sampleClock(seconds = 1.1) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    assert.equal(await client.health(), true);
    await sleep(20);
  }
}

describe("errors", () => {
  test("each error answer throws its own class with the gateway's code", async () => {
    await assert.rejects(client.credential("cred_nope"), (e) => e instanceof NotFound && e.status === 404);
    await assert.rejects(new Client(gateway.url, "wrong").credentials(), Unauthorized);
    const cred = await client.createCredential("short secret");
    await assert.rejects(
      client.setAuthenticator(cred, { secret: "GEZDGNBV", kind: "totp" }),
      (e) => e instanceof Invalid && e.status === 422 && e instanceof ApiError,
    );
    await assert.rejects(client.takeBackupCode(cred), (e) => e instanceof NoBackupCodes && e.code === "no_backup_codes");
  });
});

describe("codes", () => {
  test("a mailed code is handed out once as { code, source }; then null", async () => {
    const cred = await client.createCredential("mail");
    assert.equal(await client.code(cred.id), null);
    await mailCode(gateway, cred.inbox, "482913");
    const got = await client.code(cred.id, { wait: 10 });
    const { code, source } = got;
    assert.deepEqual([code, source], ["482913", "email"]);
    assert.deepEqual({ ...got, expiresAt: undefined, receivedAt: undefined, sender: undefined }, {
      code: "482913",
      source: "email",
      expiresAt: undefined,
      receivedAt: undefined,
      sender: undefined,
    });
    assert.equal(await client.code(cred.id), null);
  });

  test("expectCode skips a code received before the mark and takes the next", async () => {
    const cred = await client.createCredential("stale");
    await mailCode(gateway, cred.inbox, "111111");
    await sampleClock();
    const pending = await client.expectCode(cred.id, { margin: 0 });
    await assert.rejects(pending.code({ wait: 0.3 }), CodeTimeout);
    await mailCode(gateway, cred.inbox, "222222");
    assert.equal((await pending.code({ wait: 10 })).code, "222222");
  });

  test("after reject the next code is one received after the refused one", async () => {
    const cred = await client.createCredential("refused");
    const pending = await client.expectCode(cred);
    await mailCode(gateway, cred.inbox, "333333");
    assert.equal((await pending.code({ wait: 10 })).code, "333333");
    await mailCode(gateway, cred.inbox, "444444"); // the site sent a new one as it refused
    pending.reject();
    assert.equal((await pending.code({ wait: 10 })).code, "444444");
    assert.equal(pending.handedOut, 2);
  });

  test("a TOTP code matches RFC 6238 and a refused one is followed by the next step", async () => {
    const cred = await client.createCredential("totp");
    await client.setAuthenticator(cred, { secret: SECRET, kind: "totp", period: 2 });
    const pending = await client.expectCode(cred);
    const first = await pending.code({ wait: 5 });
    assert.equal(first.source, "totp");
    const end = first.expiresAt.getTime() / 1000;
    assert.equal(first.code, totp(SECRET, end - 1, { period: 2 }));
    pending.reject();
    const second = await pending.code({ wait: 10 });
    assert.ok(second.expiresAt > first.expiresAt);
    assert.equal(second.code, totp(SECRET, second.expiresAt.getTime() / 1000 - 1, { period: 2 }));
  });
});

describe("logins", () => {
  test("a login takes only later codes, excludes a second one, and finishes on return", async () => {
    const cred = await client.createCredential("login");
    await mailCode(gateway, cred.inbox, "101010");
    const got = await client.withLogin(cred, async (login) => {
      await assert.rejects(client.openLogin(cred), LoginInProgress);
      await assert.rejects(login.code({ wait: 0.3 }), CodeTimeout);
      await mailCode(gateway, cred.inbox, "202020");
      return (await login.code({ wait: 10 })).code;
    });
    assert.equal(got, "202020");
    const again = await client.openLogin(cred); // free again
    await again.refresh();
    assert.equal(again.status, "open");
    await again.finish("succeeded");
  });

  test("a throw finishes the login as failed and goes on", async () => {
    const cred = await client.createCredential("login fails");
    let held;
    await assert.rejects(
      client.withLogin(cred, async (login) => {
        held = login;
        throw new Error("the site is down");
      }),
      /the site is down/,
    );
    await held.refresh();
    assert.equal(held.status, "failed");
    await assert.rejects(held.code({ wait: 0 }), Expired);
  });
});

describe("links", () => {
  test("expectLink skips an earlier link; a login's reject makes the next link newer", async () => {
    const cred = await client.createCredential("links");
    const mailLink = (n) =>
      sendMail(gateway.smtpPort, cred.inbox, {
        subject: "Your sign-in link for Acme Cloud",
        text: `Hi,\n\nClick the link below to sign in to Acme Cloud.\n\nhttp://acme.example/magic?token=t${n}\n`,
        html: `<p>Click the button below to sign in.</p><p><a href="http://acme.example/magic?token=t${n}">Sign in to Acme Cloud</a></p>`,
      });
    await mailLink(0);
    await sampleClock();
    const pending = await client.expectLink(cred, { margin: 0 });
    await assert.rejects(pending.link({ wait: 0.3 }), LinkTimeout);
    await mailLink(1);
    const link = await pending.link({ wait: 10 });
    assert.deepEqual([link.url, link.kind, link.source], ["http://acme.example/magic?token=t1", "sign_in", "email"]);
    assert.equal(await client.link(cred), null);
    await client.withLogin(cred, async (login) => {
      await mailLink(2);
      assert.equal((await login.link({ wait: 10 })).url.endsWith("t2"), true);
      await mailLink(3);
      await login.reject();
      assert.equal((await login.link({ wait: 10 })).url.endsWith("t3"), true);
    });
  });
});

describe("backup codes, interactions and approvals", () => {
  test("backup codes are handed out once each until none is left", async () => {
    const cred = await client.createCredential("backup");
    assert.equal(await client.setBackupCodes(cred, ["aaaa-1111", "bbbb-2222"]), 2);
    const taken = [await client.takeBackupCode(cred), await client.takeBackupCode(cred)];
    assert.deepEqual(taken.map((b) => b.code).sort(), ["aaaa-1111", "bbbb-2222"]);
    assert.equal(taken[1].remaining, 0);
    assert.equal(await client.backupCodesLeft(cred), 0);
    await assert.rejects(client.takeBackupCode(cred), NoBackupCodes);
  });

  test("a person's answer at the submit link is handed out once, then 410", async () => {
    const cred = await client.createCredential("person");
    const asked = await client.createInteraction(cred, { prompt: "The code from your phone" });
    assert.equal(await client.interactionCode(asked), null);
    const posted = await fetch(asked.submitUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: "778899" }),
    });
    assert.equal(posted.status, 204);
    const got = await client.interactionCode(asked, { wait: 5 });
    assert.deepEqual([got.code, got.source], ["778899", "user"]);
    await assert.rejects(client.interactionCode(asked), (e) => e instanceof Expired && e.code === "already_delivered");
  });

  test("requestApproval hands over the submit link and returns the person's decision", async () => {
    const cred = await client.createCredential("approval");
    const decided = await client.requestApproval(cred, {
      match: "42",
      wait: 10,
      onSubmitUrl: async (url) => {
        const page = await (await fetch(url)).text();
        assert.match(page, /42/);
        const resp = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ decision: "approved" }),
        });
        assert.equal(resp.status, 204);
      },
    });
    assert.equal(decided.status, "approved");
    assert.equal(decided.approved, true);
  });
});

/** A TCP front for the gateway that breaks its first `drop` connections. */
async function flaky(target, { drop, afterRequest, port = 0 }) {
  const targetPort = Number(new URL(target).port);
  const front = { connections: 0 };
  const open = new Set();
  const server = net.createServer((socket) => {
    front.connections += 1;
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    if (front.connections <= drop) {
      if (!afterRequest) return socket.resetAndDestroy();
      let seen = "";
      socket.on("data", (chunk) => {
        seen += chunk;
        if (seen.includes("\r\n\r\n")) socket.resetAndDestroy();
      });
      return;
    }
    const up = net.connect(targetPort, "127.0.0.1");
    socket.pipe(up).pipe(socket);
    socket.on("error", () => up.destroy());
    up.on("error", () => socket.destroy());
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  front.url = `http://127.0.0.1:${server.address().port}`;
  front.close = () => {
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of open) socket.destroy(); // idle keep-alive connections too
    return closed;
  };
  return front;
}

describe("retries", () => {
  test("a read whose connections break after sending is repeated until answered", async () => {
    const front = await flaky(gateway.url, { drop: 2, afterRequest: true });
    try {
      const cred = await client.createCredential("via flaky");
      const got = await new Client(front.url, key, { retry: FAST }).credential(cred.id);
      assert.equal(got.id, cred.id);
      assert.equal(front.connections, 3);
    } finally {
      await front.close();
    }
  });

  test("a POST that may have arrived is not repeated", async () => {
    const front = await flaky(gateway.url, { drop: 1, afterRequest: true });
    try {
      await assert.rejects(
        new Client(front.url, key, { retry: FAST }).createCredential("maybe"),
        (e) => e instanceof ConnectionFailed && e.maybeProcessed === true && /not repeated/.test(e.message),
      );
      assert.equal(front.connections, 1);
    } finally {
      await front.close();
    }
  });

  test("a POST that met a refused connection is repeated: it never arrived", async () => {
    const port = await freePort();
    const lines = [];
    const creating = new Client(`http://127.0.0.1:${port}`, key, {
      retry: { attempts: 40, backoff: 0.05, maxBackoff: 0.1 },
      log: (line) => lines.push(line),
    }).createCredential("after refusals");
    await eventually(() => lines.filter((l) => l.includes("trying again")).length >= 3);
    const front = await flaky(gateway.url, { drop: 0, afterRequest: false, port });
    try {
      const cred = await creating;
      assert.deepEqual(
        (await client.credentials()).filter((c) => c.name === "after refusals").map((c) => c.id),
        [cred.id],
      );
    } finally {
      await front.close();
    }
  });

  test("an unreachable gateway fails after the tries, never having been reached", async () => {
    const port = await freePort();
    await assert.rejects(
      new Client(`http://127.0.0.1:${port}`, key, { retry: FAST }).credentials(),
      (e) => e instanceof ConnectionFailed && e.maybeProcessed === false && /after 4 tries/.test(e.message),
    );
  });
});

describe("webhooks", () => {
  test("a real delivery verifies; a changed body, another secret or an old signature do not", async () => {
    const seen = [];
    const receiver = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(204).end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${receiver.address().port}/hook`;
      const hook = await client.createWebhook(url, ["interaction.code_required"]);
      assert.match(hook.secret, /^whsec_/);
      const cred = await client.createCredential("hooked");
      const asked = await client.createInteraction(cred);
      await eventually(() => seen.length > 0);
      const [delivery] = seen;
      const event = await verifyWebhook(delivery.body, delivery.headers, hook.secret);
      assert.equal(event.type, "interaction.code_required");
      assert.equal(event.id, delivery.headers["webhook-id"]);
      assert.equal(event.data.interaction_id ?? event.data.id, asked.id);
      // Both secrets during a rotation: either may have signed it.
      const other = `whsec_${Buffer.from("another secret of 32 bytes......").toString("base64")}`;
      assert.equal((await verifyWebhook(delivery.body, new Headers(delivery.headers), [other, hook.secret])).id, event.id);
      await assert.rejects(verifyWebhook(delivery.body.replace("code_required", "expired"), delivery.headers, hook.secret), WebhookVerificationError);
      await assert.rejects(verifyWebhook(delivery.body, delivery.headers, other), WebhookVerificationError);
      const old = new Date(Date.now() - 3600 * 1000);
      const stale = {
        "webhook-id": "msg_old",
        "webhook-timestamp": String(Math.floor(old.getTime() / 1000)),
        "webhook-signature": new Signer(hook.secret).sign("msg_old", old, delivery.body),
      };
      await assert.rejects(verifyWebhook(delivery.body, stale, hook.secret), /timestamp/i);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});

describe("secrets stay hidden", () => {
  test("no code, link, backup code, key or submit link in inspect, JSON or the log", async () => {
    const lines = [];
    const logged = new Client(gateway.url, key, { log: (line) => lines.push(line) });
    const cred = await logged.createCredential("hidden", { password: "hunter2-password" });
    await mailCode(gateway, cred.inbox, "918273");
    const got = await logged.code(cred, { wait: 10 });
    await logged.setBackupCodes(cred, ["zzzz-9999"]);
    const backup = await logged.takeBackupCode(cred);
    const asked = await logged.createInteraction(cred);
    const password = await logged.password(cred);
    assert.equal(password, "hunter2-password");
    const shown = [got, backup, asked, logged, cred].map((o) => inspect(o, { depth: 5 }) + JSON.stringify(o)).join("\n");
    const token = new URL(asked.submitUrl).pathname.split("/").pop();
    for (const secret of ["918273", "zzzz-9999", key, token, "hunter2-password"]) {
      assert.equal(shown.includes(secret), false, `shown: ${secret.slice(0, 3)}...`);
      assert.equal(lines.join("\n").includes(secret), false);
    }
    assert.match(inspect(got), /6 characters/);
  });
});

test("the gateway's clock is bounded by Date headers and restarts after a step", () => {
  let mono = 100;
  const clock = new ServerClock(() => mono, () => 0);
  assert.equal(clock.observed, false);
  clock.observe("Sun, 06 Dec 2026 10:00:00 GMT", 100, 100.5); // offset in [t-100.5, t+1-100)
  const t = Date.parse("Sun, 06 Dec 2026 10:00:00 GMT") / 1000;
  assert.equal(clock.now(), t - 0.5);
  mono = 101;
  clock.observe("Sun, 06 Dec 2026 10:00:01 GMT", 100.9, 101); // [t+1-101, t+2-100.9)
  assert.equal(clock.now(), t + 1); // mono 101 plus the narrowed low end t - 100
  clock.observe("Sun, 06 Dec 2026 10:00:02 GMT", 101.5, 101.6); // [t+2-101.6, t+3-101.5)
  assert.ok(Math.abs(clock.uncertainty - 0.6) < 1e-6); // the offset is now within [t-99.6, t-99)
  assert.ok(Math.abs(clock.now() - (t + 1.4)) < 1e-6);
  clock.observe("Sun, 06 Dec 2026 11:00:00 GMT", 101, 101); // a stepped clock: restart
  assert.equal(clock.now(), t + 3600);
});

const PACKAGE = path.join(ROOT, "clients/typescript");
const EXAMPLE = path.join(PACKAGE, "examples/quickstart.mjs");

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
