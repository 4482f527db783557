// What the tests share: a real `otpgate serve` on loopback ports with a fresh
// data dir, a tiny SMTP client to mail it, a reference TOTP, and waits.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Client } from "../dist/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../../..");
const PYTHON = process.env.OTPGATE_PYTHON ?? path.join(ROOT, ".venv/bin/python");

/** A port nobody listens on (yet). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until `check()` is truthy, for at most `within` ms. */
export async function eventually(check, within = 20000) {
  const deadline = Date.now() + within;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("the condition did not come true in time");
    await sleep(20);
  }
}

/** `otpgate serve` as a process, on free loopback ports with a fresh data dir. */
export async function startGateway(extraEnv = {}) {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: create the worktree's .venv first`);
  const dir = mkdtempSync(path.join(tmpdir(), "otpgate-ts-"));
  const http = await freePort();
  const smtp = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OTPGATE_")));
  Object.assign(env, {
    OTPGATE_DATA_DIR: path.join(dir, "data"),
    OTPGATE_HTTP: `127.0.0.1:${http}`,
    OTPGATE_SMTP: `127.0.0.1:${smtp}`,
    OTPGATE_ALLOW_PRIVATE_TARGETS: "1",
    ...extraEnv,
  });
  const out = openSync(path.join(dir, "serve.out"), "w");
  const err = openSync(path.join(dir, "serve.err"), "w");
  const proc = spawn(PYTHON, ["-m", "gateway", "serve"], { env, cwd: dir, stdio: ["ignore", out, err] });
  let exited = null;
  proc.on("exit", (code) => (exited = code));
  const url = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited !== null) throw new Error(`serve exited: ${readFileSync(path.join(dir, "serve.err"), "utf8")}`);
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("serve did not come up");
    await sleep(50);
  }
  const adminKey = readFileSync(path.join(dir, "data", "admin.key"), "utf8").trim();
  return {
    url,
    smtpPort: smtp,
    adminKey,
    /** A new tenant's key. */
    async tenantKey(name = "acme") {
      return (await new Client(url, adminKey).createTenant(name)).apiKey;
    },
    async stop() {
      if (exited === null) {
        const done = new Promise((resolve) => proc.once("exit", resolve));
        proc.kill("SIGTERM");
        await done;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Send one message over SMTP, as a site's mail server would. */
export async function sendMail(port, to, { subject, text, html, from = "no-reply@service.example" }) {
  const boundary = `b${Math.random().toString(36).slice(2)}`;
  const head = [`From: Service <${from}>`, `To: ${to}`, `Subject: ${subject}`, "MIME-Version: 1.0"];
  const body = html
    ? [
        `Content-Type: multipart/alternative; boundary="${boundary}"`,
        "",
        `--${boundary}`,
        "Content-Type: text/plain; charset=utf-8",
        "",
        text,
        `--${boundary}`,
        "Content-Type: text/html; charset=utf-8",
        "",
        html,
        `--${boundary}--`,
      ]
    : ["Content-Type: text/plain; charset=utf-8", "", text];
  const message = [...head, ...body].join("\r\n").replace(/^\./gm, "..");
  const socket = net.connect(port, "127.0.0.1");
  socket.setEncoding("utf8");
  let buffer = "";
  const waiters = [];
  socket.on("data", (chunk) => {
    buffer += chunk;
    for (;;) {
      const m = buffer.match(/^(\d{3}) .*\r\n/m);
      if (!m) break;
      const end = buffer.indexOf(m[0]) + m[0].length;
      buffer = buffer.slice(end);
      waiters.shift()?.(Number(m[1]));
    }
  });
  const reply = () => new Promise((resolve) => waiters.push(resolve));
  const say = async (line, expect) => {
    const got = reply();
    socket.write(`${line}\r\n`);
    const status = await got;
    if (status !== expect) throw new Error(`SMTP ${line.split(" ")[0]}: ${status}`);
  };
  const greeting = await reply();
  if (greeting !== 220) throw new Error(`SMTP greeting ${greeting}`);
  await say("EHLO test.localhost", 250);
  await say(`MAIL FROM:<${from}>`, 250);
  await say(`RCPT TO:<${to}>`, 250);
  await say("DATA", 354);
  await say(`${message}\r\n.`, 250);
  socket.end("QUIT\r\n");
}

/** A sign-in code mail. */
export function mailCode(gateway, inbox, code) {
  return sendMail(gateway.smtpPort, inbox, {
    subject: "Your sign-in code",
    text: `Your verification code is ${code}. It expires in 10 minutes.`,
  });
}

/** RFC 6238 TOTP (SHA-1) of a base32 secret at UNIX second `at`. */
export function totp(secret, at, { period = 30, digits = 6 } = {}) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "")) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => Number.parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / period)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(value).padStart(digits, "0");
}
