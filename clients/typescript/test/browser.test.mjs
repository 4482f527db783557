// fillCode and openLink in Debian's Chromium (through playwright-core) against a
// real `otpgate serve`: one input, plain boxes, auto-advancing boxes, a paste
// handler; and never a code used up when the fill cannot work.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";

import { Client, fillCode, openLink } from "../dist/index.js";
import { mailCode, sendMail, startGateway, totp } from "./gateway.mjs";

const CHROMIUM = process.env.OTPGATE_CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
// Without Chromium these tests skip, unless OTPGATE_REQUIRE_BROWSER=1 makes that a failure.
const SKIP =
  !existsSync(CHROMIUM) && process.env.OTPGATE_REQUIRE_BROWSER !== "1"
    ? `${CHROMIUM} is not installed (apt-get install chromium)`
    : false;

let gateway;
let client;
let browser;

before(async () => {
  if (SKIP) return;
  gateway = await startGateway();
  client = new Client(gateway.url, await gateway.tenantKey());
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

/**
 * A verification page.  `field` is the markup of the code field; the page checks
 * what was typed against `expected`, shows #welcome or appends a fresh .error,
 * and counts its submits in window.submits.
 */
function verificationPage(field, expected, script = "") {
  return `<!doctype html><html><body>
<form id="verify">${field}<button id="go" type="submit">Verify</button></form>
<p id="welcome" hidden>Welcome</p>
<script>
window.submits = 0;
const boxes = () => [...document.querySelectorAll("#verify input")];
function check() {
  window.submits += 1;
  const typed = boxes().map((b) => b.value).join("");
  if (typed === ${JSON.stringify(expected)}) { document.getElementById("welcome").hidden = false; return; }
  const error = document.createElement("p"); error.className = "error"; error.textContent = "Wrong code";
  document.body.append(error);
}
document.getElementById("verify").addEventListener("submit", (e) => { e.preventDefault(); check(); });
${script}
</script></body></html>`;
}

const SINGLE = '<input id="code" autocomplete="one-time-code" inputmode="numeric" maxlength="6">';
const BOXES = Array.from({ length: 6 }, (_, i) => `<input class="box" aria-label="Digit ${i + 1}" maxlength="1">`).join("");

// Boxes that take each digit on keydown themselves and move the focus on, as many sites do.
const AUTO_ADVANCE = `
boxes().forEach((box, i, all) => box.addEventListener("keydown", (e) => {
  if (!/^[0-9]$/.test(e.key)) return;
  e.preventDefault();
  box.value = e.key;
  if (all[i + 1]) all[i + 1].focus(); else check();
}));`;

// Boxes that spread a pasted code over themselves, and advance on input.
const PASTE = `
boxes().forEach((box, i, all) => {
  box.addEventListener("input", () => { if (box.value && all[i + 1]) all[i + 1].focus(); });
  box.addEventListener("paste", (e) => {
    e.preventDefault();
    window.pasted = (window.pasted ?? 0) + 1;
    const text = (e.clipboardData.getData("text") || "").replace(/\\D/g, "");
    all.forEach((b, j) => { b.value = text[j] ?? ""; });
  });
});`;

async function withPage(html, fn) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.setContent(html);
    return await fn(page);
  } finally {
    await context.close();
  }
}

/** fillCode's result and its outcome. */
async function fill(page, selector, credential, options = {}) {
  let result;
  const ok = await fillCode(page, selector, client, credential, { ...options, onResult: (r) => (result = r) });
  return { ok, ...result };
}

describe("fillCode types the code", { skip: SKIP }, () => {
  // What the page saw: how often it was submitted, and pasted into.
  for (const [name, field, script, selector, seen] of [
    ["a single input", SINGLE, "", "#code", { submits: 1, pasted: 0 }],
    ["plain boxes", BOXES, "", "#verify input.box", { submits: 1, pasted: 0 }],
    ["auto-advancing boxes", BOXES, AUTO_ADVANCE, "#verify input.box", { submits: 1, pasted: 0 }],
    ["boxes with a paste handler", BOXES, PASTE, "#verify input.box", { submits: 1, pasted: 1 }],
  ]) {
    test(`into ${name}, and the site accepts it`, async () => {
      const cred = await client.createCredential(name);
      const code = String(100000 + Math.floor(Math.random() * 900000));
      await withPage(verificationPage(field, code, script), async (page) => {
        const got = await fill(page, selector, cred.id, {
          trigger: () => mailCode(gateway, cred.inbox, code),
          accepted: "#welcome",
          rejected: ".error",
          wait: 10,
        });
        assert.deepEqual([got.ok, got.outcome, got.source], [true, "accepted", "email"]);
        assert.equal(await page.evaluate(() => document.querySelectorAll(".error").length), 0);
        assert.deepEqual(await page.evaluate(() => ({ submits: window.submits, pasted: window.pasted ?? 0 })), seen);
      });
    });
  }

  test("a refused code is followed by a newer one on the next try", async () => {
    const cred = await client.createCredential("retry");
    await withPage(verificationPage(BOXES, "654321", AUTO_ADVANCE), async (page) => {
      const got = await fill(page, "#verify input.box", cred, {
        trigger: () => mailCode(gateway, cred.inbox, "123456"),
        resend: () => mailCode(gateway, cred.inbox, "654321"),
        accepted: "#welcome",
        rejected: ".error",
        attempts: 2,
        wait: 10,
      });
      assert.deepEqual([got.ok, got.outcome, got.attempts], [true, "accepted", 2]);
    });
  });

  test("a code a person gives at the submit link", async () => {
    const cred = await client.createCredential("person");
    await withPage(verificationPage(SINGLE, "314159"), async (page) => {
      const got = await fill(page, "#code", cred, {
        via: "person",
        prompt: "The code on your phone",
        onSubmitUrl: async (url) => {
          const resp = await fetch(url, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ code: "314159" }),
          });
          assert.equal(resp.status, 204);
        },
        accepted: "#welcome",
        rejected: ".error",
        wait: 10,
      });
      assert.deepEqual([got.ok, got.outcome, got.source], [true, "accepted", "user"]);
    });
  });

  test("a TOTP code in a login, with no selectors: typed and submitted", async () => {
    const cred = await client.createCredential("totp boxes");
    await client.setAuthenticator(cred, { secret: SECRET, kind: "totp" });
    await withPage(verificationPage(BOXES, "", ""), async (page) => {
      const ok = await client.withLogin(cred, (login) => fillCode(page, "#verify input.box", client, cred, { login }));
      assert.equal(ok, true);
      const typed = await page.evaluate(() => [...document.querySelectorAll("input")].map((b) => b.value).join(""));
      const now = Date.now() / 1000;
      assert.ok([totp(SECRET, now), totp(SECRET, now - 30)].includes(typed));
      assert.equal(await page.evaluate(() => window.submits), 1); // Enter in the last box
    });
  });
});

describe("fillCode never uses up a code it cannot type", { skip: SKIP }, () => {
  for (const [name, html, selector] of [
    ["no such field", verificationPage(SINGLE, "x"), "#nowhere"],
    ["a hidden field", verificationPage('<input id="code" hidden>', "x"), "#code"],
    ["a read-only field", verificationPage('<input id="code" readonly>', "x"), "#code"],
    ["a box set with one box disabled", verificationPage(BOXES.replace('maxlength="1">', 'maxlength="1" disabled>'), "x"), "#verify input.box"],
  ]) {
    test(`${name}: false, and the code is still there`, async () => {
      const cred = await client.createCredential(name);
      await mailCode(gateway, cred.inbox, "246810");
      await withPage(html, async (page) => {
        const got = await fill(page, selector, cred, { find: 0.5, wait: 5 });
        assert.deepEqual([got.ok, got.outcome], [false, "no_field"]);
      });
      assert.equal((await client.code(cred, { wait: 5 })).code, "246810");
    });
  }

  test("an authenticator whose digits do not match the boxes: false, and no code taken", async () => {
    const cred = await client.createCredential("hotp");
    await client.setAuthenticator(cred, { secret: SECRET, kind: "hotp", counter: 0 });
    const four = Array.from({ length: 4 }, () => '<input class="box" maxlength="1">').join("");
    await withPage(verificationPage(four, "x"), async (page) => {
      const got = await fill(page, "#verify input.box", cred);
      assert.deepEqual([got.ok, got.outcome], [false, "length_mismatch"]);
    });
    assert.equal((await client.code(cred)).code, totp(SECRET, 0, { period: 1 })); // HOTP counter 0: untouched
  });

  test("a single field shorter than the authenticator's codes: false, and no code taken", async () => {
    const cred = await client.createCredential("hotp, short field");
    await client.setAuthenticator(cred, { secret: SECRET, kind: "hotp", counter: 0 });
    await withPage(verificationPage('<input id="code" maxlength="4">', "x"), async (page) => {
      const got = await fill(page, "#code", cred);
      assert.deepEqual([got.ok, got.outcome], [false, "length_mismatch"]);
    });
    assert.equal((await client.code(cred)).code, totp(SECRET, 0, { period: 1 }));
  });

  test("a received code longer than the boxes is not typed or submitted", async () => {
    const cred = await client.createCredential("eight digits");
    await withPage(verificationPage(BOXES, "x"), async (page) => {
      const got = await fill(page, "#verify input.box", cred, {
        trigger: () => mailCode(gateway, cred.inbox, "12345678"),
        wait: 10,
      });
      assert.deepEqual([got.ok, got.outcome], [false, "length_mismatch"]);
      const state = await page.evaluate(() => [
        [...document.querySelectorAll("input")].map((b) => b.value).join(""),
        window.submits,
      ]);
      assert.deepEqual(state, ["", 0]);
    });
  });
});

describe("openLink", { skip: SKIP }, () => {
  test("opens the mailed sign-in link in the agent's own page, once", async () => {
    const cred = await client.createCredential("link site");
    const site = http.createServer((req, res) => {
      const url = new URL(req.url, "http://x");
      const welcome = url.pathname === "/magic" && url.searchParams.get("token") === "t0k3n";
      res.writeHead(welcome ? 200 : 403, { "Content-Type": "text/html" });
      res.end(welcome ? '<p id="welcome">Signed in</p>' : '<p class="error">Link expired</p>');
    });
    await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
    const link = `http://127.0.0.1:${site.address().port}/magic?token=t0k3n`;
    try {
      await withPage("<p>Sign in</p>", async (page) => {
        let result;
        const ok = await openLink(page, client, cred, {
          trigger: () =>
            sendMail(gateway.smtpPort, cred.inbox, {
              subject: "Your sign-in link",
              text: `Click the link below to sign in.\n\n${link}\n`,
              html: `<p>Click the button below to sign in.</p><a href="${link}">Sign in</a>`,
            }),
          accepted: "#welcome",
          rejected: ".error",
          wait: 10,
          onResult: (r) => (result = r),
        });
        assert.equal(ok, true);
        assert.deepEqual([result.outcome, result.status], ["accepted", 200]);
        assert.equal(JSON.stringify(result).includes("t0k3n"), false);
        assert.equal(page.url(), link);
      });
      assert.equal(await client.link(cred), null);
    } finally {
      await new Promise((resolve) => site.close(resolve));
    }
  });
});
