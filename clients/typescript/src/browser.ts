/**
 * Type a code (or a password) from the gateway into a Playwright page, or open a sign-in link.
 *
 * The code or the link goes from the gateway into the page without passing
 * through the agent's language model, which could leak or mistype it: the
 * helper fetches it, types it, submits, and tells the caller only whether the
 * site took it.
 *
 *     const ok = await fillCode(page, "#code", client, credentialId, {
 *       trigger: () => page.click("#sign-in"),    // makes the site send the code
 *       accepted: "#welcome", rejected: ".error",
 *     });
 *
 * The field is either one input or a set of boxes, one character each: a
 * selector that matches several inputs is such a set (split inputs,
 * auto-advancing boxes, boxes with a paste handler).  The target is checked
 * before any code is fetched (it exists, is visible and editable, and its box
 * count fits the authenticator's digits when the credential has one), so a
 * fill that cannot work never uses up a code.  A code whose length does not
 * match the boxes is not typed at all.
 *
 * Boxes are filled the ways people fill them, each checked by reading the
 * boxes back: a paste into the first box (for pages that spread a pasted
 * code), then one key press per box (pages that move the focus themselves,
 * or act on key events), then a plain fill of each box.  Nothing is
 * submitted unless the boxes hold the code, and a page that submits by
 * itself once the code is in is not submitted to a second time.
 *
 * Playwright is not a dependency: `page` is any Playwright `Page` (playwright,
 * playwright-core or @playwright/test), used through the few methods below.
 */

import { type Client, type CredentialRef, type OnSubmitUrl, handOver } from "./client.js";
import { monotonic } from "./clock.js";
import { CodeTimeout, Expired, LinkTimeout } from "./errors.js";
import type { Login } from "./logins.js";
import type { Code, Link } from "./models.js";
import type { PendingCode, PendingLink } from "./pending.js";

/* The parts of Playwright's Page and Locator used here. */
export interface LocatorLike {
  count(): Promise<number>;
  nth(index: number): LocatorLike;
  first(): LocatorLike;
  waitFor(options: { state: "visible"; timeout: number }): Promise<void>;
  isVisible(): Promise<boolean>;
  isEditable(options?: { timeout?: number }): Promise<boolean>;
  fill(value: string, options?: { timeout?: number }): Promise<void>;
  focus(options?: { timeout?: number }): Promise<void>;
  press(key: string, options?: { timeout?: number }): Promise<void>;
  pressSequentially(text: string, options?: { timeout?: number }): Promise<void>;
  click(options?: { timeout?: number }): Promise<void>;
  evaluate(fn: (element: any, arg: any) => unknown, arg?: any, options?: { timeout?: number }): Promise<any>;
  evaluateAll(fn: (elements: any[]) => unknown): Promise<any>;
}

export interface PageLike {
  locator(selector: string): LocatorLike;
  keyboard: { type(text: string): Promise<void>; press(key: string): Promise<void> };
  evaluate(fn: (arg: any) => unknown, arg?: any): Promise<any>;
  goto(url: string, options?: { timeout?: number }): Promise<{ status(): number } | null>;
}

/**
 * How a fill ended, without the code (for `onResult`).  `outcome`: `accepted`
 * (the `accepted` selector showed), `typed` (no selectors given: typed and
 * submitted), `rejected` (the site refused every try), `no_field` (the target
 * is missing, hidden or not editable), `length_mismatch` (the code does not
 * fit the boxes or the field's maxlength), `not_typed` (the page did not take
 * the characters), `no_code` (none came within `wait`), `expired` (a person's
 * request expired unanswered) or `no_verdict` (neither selector showed
 * within `settle` seconds).
 */
export interface FillResult {
  ok: boolean;
  outcome: string;
  source: string | null;
  attempts: number;
  seconds: number;
}

export interface FillCodeOptions {
  /** Makes the site send the code (clicking "Sign in"); runs after the mark of `expectCode`. */
  trigger?: () => Promise<unknown>;
  /** Your own `expectCode` mark, when the code was asked for before the call. */
  pending?: PendingCode;
  /** Take the code from this login (and report a refusal to it). */
  login?: Login;
  /** `person`: ask a person for the code through an interaction, once per try. */
  via?: "auto" | "person";
  /** Clicked after typing; absent: Enter is pressed in the field; false: nothing is pressed. */
  submit?: string | false;
  /** CSS selector that shows when the site took the code. */
  accepted?: string;
  /** CSS selector that shows when the site refused the code (a fresh one counts). */
  rejected?: string;
  /** Tries in all, each with a newer code after a refusal (default 1). */
  attempts?: number;
  /** The site's "send a new code" action, run before each try after the first. */
  resend?: () => Promise<unknown>;
  /** Seconds to wait for a code, per try (default 120). */
  wait?: number;
  /** TOTP: seconds a code must stay valid (default 3). */
  minValidity?: number;
  /** Seconds to wait for the site's verdict (default 15). */
  settle?: number;
  /** Seconds to wait for the field to show (default 10). */
  find?: number;
  /** With `via: "person"`: the question shown to the person. */
  prompt?: string;
  /** With `via: "person"`: where the interaction's link goes (printed when absent). */
  onSubmitUrl?: OnSubmitUrl;
  /** Told how the fill ended, without the code. */
  onResult?: (result: FillResult) => void;
}

/** Seconds a page may take to submit a typed code by itself before the helper submits it. */
const AUTO_SUBMIT_GRACE = 1;

/** Marked on refusal messages already on the page, so only a fresh one counts. */
const SEEN = "data-otpgate-seen";

interface Target {
  field: LocatorLike;
  boxes: number;
  /** The single field's maxlength (0 when none). */
  maxLength: number;
}

/** Fill the credential's password (from the gateway) into `selector`. */
export async function fillPassword(
  page: PageLike,
  selector: string,
  client: Client,
  credential: CredentialRef,
): Promise<void> {
  await page.locator(selector).fill(await client.password(credential));
}

/**
 * Get the credential's code, type it into `selector` (one input, or one box
 * per character), submit, and return whether it worked.  See the module doc
 * and `FillCodeOptions`.
 */
export async function fillCode(
  page: PageLike,
  selector: string,
  client: Client,
  credential: CredentialRef,
  options: FillCodeOptions = {},
): Promise<boolean> {
  const started = monotonic();
  const via = options.via ?? "auto";
  const attempts = Math.max(1, options.attempts ?? 1);
  let source: string | null = null;
  let tries = 0;
  const end = (ok: boolean, outcome: string): boolean => {
    options.onResult?.({
      ok,
      outcome,
      source,
      attempts: tries,
      seconds: Math.round((monotonic() - started) * 1000) / 1000,
    });
    return ok;
  };

  let pending = options.pending;
  if (via === "auto" && pending === undefined && options.trigger && options.login === undefined) {
    pending = await client.expectCode(credential);
  }
  let digits: number | null | undefined = pending ? (pending.credential.authenticator?.digits ?? null) : undefined;
  if (options.trigger) await options.trigger();
  while (tries < attempts) {
    tries += 1;
    if (tries > 1 && options.resend) await options.resend();
    const target = await findTarget(page, selector, options.find ?? 10);
    if (target === null) return end(false, "no_field");
    if (via === "auto") {
      // Known before any code is taken: an authenticator's codes have a fixed length.
      if (digits === undefined) {
        const id = options.login?.credentialId ?? credential;
        digits = (await client.credential(id)).authenticator?.digits ?? null;
      }
      if (digits !== null && !fits(digits, target)) return end(false, "length_mismatch");
    }
    let code: Code;
    try {
      code = await getCode(client, credential, via, pending, options);
    } catch (exc) {
      if (exc instanceof CodeTimeout) return end(false, "no_code");
      if (exc instanceof Expired) return end(false, "expired");
      throw exc;
    }
    source = code.source;
    if (!fits(code.code.length, target)) return end(false, "length_mismatch");
    if (options.rejected !== undefined) await markSeen(page, options.rejected);
    const typed = await typeCode(page, target, code.code);
    if (typed === "failed") return end(false, "not_typed");
    const watched = options.accepted !== undefined || options.rejected !== undefined;
    const settle = options.settle ?? 15;
    // Many pages submit by themselves once the last character is in: give them a
    // moment, so the code is not submitted twice (a second try may count as a failure).
    let verdict = watched ? await waitForVerdict(page, options.accepted, options.rejected, AUTO_SUBMIT_GRACE) : null;
    if (verdict === null && typed === "typed") await submit(page, target, options.submit, settle);
    if (!watched) return end(true, "typed");
    verdict ??= await waitForVerdict(page, options.accepted, options.rejected, settle);
    if (verdict === null) return end(false, "no_verdict");
    if (verdict) return end(true, "accepted");
    if (options.login) await options.login.reject();
    else pending?.reject();
  }
  return end(false, "rejected");
}

function fits(length: number, target: Target): boolean {
  if (target.boxes > 1) return length === target.boxes;
  return target.maxLength <= 0 || length <= target.maxLength;
}

async function getCode(
  client: Client,
  credential: CredentialRef,
  via: string,
  pending: PendingCode | undefined,
  options: FillCodeOptions,
): Promise<Code> {
  const wait = options.wait ?? 120;
  const minValidity = options.minValidity ?? 3;
  if (via === "person") {
    const asked = await client.createInteraction(credential, { prompt: options.prompt });
    await handOver(asked.submitUrl ?? "", options.onSubmitUrl, "give the code");
    if (options.login) return options.login.code({ wait }); // the answer reaches the login
    const got = await client.interactionCode(asked, { wait });
    if (got === null) throw new CodeTimeout(`no answer within ${wait} s`);
    return got;
  }
  if (options.login) return options.login.code({ wait, minValidity });
  if (pending) return pending.code({ wait, minValidity });
  const got = await client.code(credential, { wait, minValidity });
  if (got === null) throw new CodeTimeout(`no code within ${wait} s`);
  return got;
}

/** The field, when it shows and every box of it is visible and editable; null otherwise. */
async function findTarget(page: PageLike, selector: string, seconds: number): Promise<Target | null> {
  const field = page.locator(selector);
  try {
    await field.first().waitFor({ state: "visible", timeout: seconds * 1000 });
    const boxes = await field.count();
    for (let i = 0; i < boxes; i++) {
      const box = field.nth(i);
      if (!(await box.isVisible()) || !(await box.isEditable({ timeout: 1000 }))) return null;
    }
    const maxLength = await field.first().evaluate((el: any) => Number(el.maxLength ?? -1), null);
    return { field, boxes, maxLength: boxes === 1 ? maxLength : 0 };
  } catch {
    // Playwright's TimeoutError, or an element that cannot be edited (isEditable throws)
    return null;
  }
}

const normal = (value: string) => value.replace(/[\s-]/g, "");

/** What the field holds now, or null when it is gone (the page moved on by itself). */
async function held(target: Target): Promise<string | null> {
  try {
    if ((await target.field.count()) !== target.boxes) return null;
    return normal(await target.field.evaluateAll((els: any[]) => els.map((e) => String(e.value ?? e.textContent ?? "")).join("")));
  } catch {
    return null; // the page navigated away
  }
}

type Typed = "typed" | "gone" | "failed";

/** Type `code` into the field, trying the ways people do until the field holds it. */
async function typeCode(page: PageLike, target: Target, code: string): Promise<Typed> {
  const ways = target.boxes > 1 ? [pasteIntoBoxes, keysIntoBoxes, fillBoxes] : [fillField, keysIntoField];
  for (const way of ways) {
    try {
      await clear(target);
      await way(page, target, code);
    } catch {
      // this way did not work on this page; the next one may
    }
    const now = await held(target);
    if (now === null) return "gone";
    if (now === normal(code)) return "typed";
  }
  await clear(target).catch(() => undefined);
  return "failed";
}

async function clear(target: Target): Promise<void> {
  for (let i = 0; i < target.boxes; i++) await target.field.nth(i).fill("", { timeout: 2000 });
}

async function pasteIntoBoxes(_page: PageLike, target: Target, code: string): Promise<void> {
  const first = target.field.first();
  await first.focus({ timeout: 2000 });
  // An untrusted paste event: a page's handler reads it; the browser itself inserts nothing.
  await first.evaluate((el: any, text: string) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, code);
}

async function keysIntoBoxes(page: PageLike, target: Target, code: string): Promise<void> {
  for (let i = 0; i < target.boxes; i++) {
    await target.field.nth(i).focus({ timeout: 2000 });
    await page.keyboard.type(code[i] ?? "");
  }
}

async function fillBoxes(_page: PageLike, target: Target, code: string): Promise<void> {
  for (let i = 0; i < target.boxes; i++) await target.field.nth(i).fill(code[i] ?? "", { timeout: 2000 });
}

async function fillField(_page: PageLike, target: Target, code: string): Promise<void> {
  await target.field.fill(code, { timeout: 2000 });
}

async function keysIntoField(_page: PageLike, target: Target, code: string): Promise<void> {
  await target.field.pressSequentially(code, { timeout: 5000 });
}

async function submit(page: PageLike, target: Target, how: string | false | undefined, settle: number): Promise<void> {
  if (how === false) return;
  if (typeof how === "string") {
    await page.locator(how).click({ timeout: settle * 1000 });
    return;
  }
  try {
    await target.field.nth(target.boxes - 1).press("Enter", { timeout: 2000 });
  } catch {
    // the field went away as the last character was typed: the page submitted by itself
  }
}

async function markSeen(page: PageLike, rejected: string): Promise<void> {
  await page.evaluate(
    ([sel, attr]: [string, string]) => document.querySelectorAll(sel).forEach((e) => e.setAttribute(attr, "")),
    [rejected, SEEN] as [string, string],
  );
}

/** True when `accepted` shows, false when a fresh `rejected` does, null after `settle` seconds. */
async function waitForVerdict(
  page: PageLike,
  accepted: string | undefined,
  rejected: string | undefined,
  settle: number,
): Promise<boolean | null> {
  // Only visible matches count: `.first()` of a union would otherwise pick a hidden
  // element that comes first in the page (a hidden "welcome" before a fresh error).
  const shown = accepted === undefined ? null : `:is(${accepted}):visible`;
  const refused = rejected === undefined ? null : `:is(${rejected}):not([${SEEN}]):visible`;
  const either = page.locator([shown, refused].filter((s) => s !== null).join(", "));
  try {
    await either.first().waitFor({ state: "visible", timeout: settle * 1000 });
  } catch (exc) {
    if ((exc as Error)?.name !== "TimeoutError") throw exc;
    return null;
  }
  return shown !== null && (await page.locator(shown).count()) > 0;
}

/**
 * How opening a link ended, without the link (for `onResult`): `accepted`,
 * `opened` (no selectors: the page loaded with a 2xx or 3xx status),
 * `rejected`, `no_link`, `unreachable` (the navigation failed) or `no_verdict`.
 */
export interface LinkResult {
  ok: boolean;
  outcome: string;
  kind: string | null;
  status: number | null;
  seconds: number;
}

export interface OpenLinkOptions {
  /** Makes the site send the link ("Email me a link"); runs after the mark of `expectLink`. */
  trigger?: () => Promise<unknown>;
  /** Seconds to wait for the link (default 120). */
  wait?: number;
  accepted?: string;
  rejected?: string;
  /** Seconds to wait for the site's verdict (default 15). */
  settle?: number;
  /** Seconds the navigation may take (default 30). */
  navigationTimeout?: number;
  onResult?: (result: LinkResult) => void;
}

/**
 * Get the sign-in link, open it in `page` (the agent's own, so the cookies of
 * the session that asked for it apply), and return whether it worked.  With
 * a credential, `trigger` runs after an `expectLink` mark; with a `Login`,
 * the login takes only what came after it opened.  A refusal is reported to
 * the login or the mark, so the next link taken is newer.  The URL never
 * leaves this function: not in a result, a log line or an error.
 */
export async function openLink(
  page: PageLike,
  client: Client,
  credentialOrLogin: CredentialRef | Login,
  options: OpenLinkOptions = {},
): Promise<boolean> {
  const started = monotonic();
  const end = (ok: boolean, outcome: string, link: Link | null = null, status: number | null = null) => {
    options.onResult?.({
      ok,
      outcome,
      kind: link?.kind ?? null,
      status,
      seconds: Math.round((monotonic() - started) * 1000) / 1000,
    });
    return ok;
  };
  const isLogin = typeof credentialOrLogin === "object" && "credentialId" in credentialOrLogin;
  let source: Login | PendingLink | null = null;
  if (isLogin) source = credentialOrLogin as Login;
  else if (options.trigger) source = await client.expectLink(credentialOrLogin as CredentialRef);
  if (options.trigger) await options.trigger();
  const wait = options.wait ?? 120;
  let link: Link;
  try {
    if (source !== null) link = await source.link({ wait });
    else {
      const got = await client.link(credentialOrLogin as CredentialRef, { wait });
      if (got === null) throw new LinkTimeout(`no link within ${wait} s`);
      link = got;
    }
  } catch (exc) {
    if (exc instanceof LinkTimeout) return end(false, "no_link");
    throw exc;
  }
  let status: number;
  try {
    const response = await page.goto(link.url, { timeout: (options.navigationTimeout ?? 30) * 1000 });
    status = response === null ? 200 : response.status();
  } catch {
    return end(false, "unreachable", link); // Playwright's message names the URL: it stops here
  }
  if (options.accepted === undefined && options.rejected === undefined) {
    const ok = status < 400;
    if (!ok) await source?.reject();
    return end(ok, ok ? "opened" : "rejected", link, status);
  }
  const verdict = await waitForVerdict(page, options.accepted, options.rejected, options.settle ?? 15);
  if (verdict === null) return end(false, "no_verdict", link, status);
  if (!verdict) {
    await source?.reject();
    return end(false, "rejected", link, status);
  }
  return end(true, "accepted", link, status);
}
