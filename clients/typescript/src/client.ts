/**
 * `Client`: the gateway's API for Node (20 and later), over the built-in `fetch`.
 *
 * Correlation (`expectCode`, `expectLink`): an agent marks the moment just
 * before it makes a site send a code or a link, and only what the gateway
 * received at or after that mark is accepted.  The mark is the gateway's
 * time (read from its `Date` headers, see `clock`), less `margin` seconds for
 * clocks between gateway replicas or a proxy's `Date`, so a code left over
 * from an earlier login is never handed out.  A login (`withLogin`) goes
 * further: the gateway itself keeps the mark, and keeps every other agent off
 * the account until it finishes.
 *
 * Which requests are repeated after a broken connection is in `transport`.
 */

import { ServerClock } from "./clock.js";
import { monotonic } from "./clock.js";
import { Conflict, LoginInProgress } from "./errors.js";
import { Login, type Outcome } from "./logins.js";
import {
  type Authenticator,
  BackupCode,
  Code,
  type Credential,
  Interaction,
  Link,
  Tenant,
  Webhook,
  authenticatorFrom,
  credentialFrom,
  isoTime,
} from "./models.js";
import { PendingCode, PendingLink } from "./pending.js";
import { DEFAULT_RETRY, MAX_WAIT, POLL_SLACK, type Retry, Transport } from "./transport.js";

/** A credential, or its id. */
export type CredentialRef = Credential | string;
/** An interaction, or its id. */
export type InteractionRef = Interaction | string;
/** Called with an interaction's `submit_url`, for a person to open. */
export type OnSubmitUrl = (url: string) => unknown;

/** `expectCode`'s default margin (seconds) for clock differences. */
export const MARGIN = 1;
/** How long `requestApproval` waits by default: the gateway's default interaction TTL. */
export const APPROVAL_WAIT = 300;

export interface ClientOptions {
  /** How connection errors are retried (never error answers). */
  retry?: Partial<Retry>;
  /** Read timeout (seconds) of a call that does not wait; a call with `wait` gets that much more. */
  timeout?: number;
  /** Called with one line per request and retry; never a body, query, header or secret. */
  log?: (line: string) => void;
}

export interface CodeOptions {
  /** Seconds to hold the request open for a code (split into several requests past 240). */
  wait?: number;
  /** Only a code received at or after this moment (the gateway's clock: prefer `expectCode`). */
  since?: Date | number;
  /** TOTP: a code valid at least this many more seconds. */
  minValidity?: number;
  /** Only codes from this source (`email`, `sms`, `user`, ...). */
  source?: string;
}

const idOf = (ref: { id: string } | string): string => (typeof ref === "string" ? ref : ref.id);

/** Give a person the `submit_url`: to `onSubmitUrl`, or printed when there is none. */
export async function handOver(url: string, onSubmitUrl: OnSubmitUrl | undefined, what: string): Promise<void> {
  if (onSubmitUrl === undefined) {
    console.log(`otpgate: a person must ${what}; open ${url}`);
    return;
  }
  await onSubmitUrl(url);
}

export class Client {
  readonly clock = new ServerClock();
  /** @internal */
  readonly http: Transport;

  /**
   * `apiKey` is a tenant's key (the admin key only for `createTenant`).
   */
  constructor(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
    this.http = new Transport(
      baseUrl,
      apiKey,
      { ...DEFAULT_RETRY, ...options.retry },
      options.timeout ?? 30,
      this.clock,
      options.log,
    );
    // The key is a secret: keep it out of util.inspect and JSON of the client.
    Object.defineProperty(this, "http", { enumerable: false });
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  /** The gateway's current time as far as its answers tell: never later than the truth. */
  serverNow(): Date {
    return new Date(this.clock.now() * 1000);
  }

  private async call(
    method: string,
    route: string,
    options: { path?: Record<string, string>; body?: unknown; repeatable?: boolean } = {},
  ): Promise<any> {
    const repeatable = options.repeatable ?? ["GET", "PUT", "DELETE"].includes(method);
    const answer = await this.http.request(method, route, { ...options, repeatable });
    return answer.body;
  }

  /** True when the gateway answers `/readyz` (its database answers too). */
  async health(): Promise<boolean> {
    try {
      await this.call("GET", "/readyz");
      return true;
    } catch {
      return false;
    }
  }

  // -- tenants (admin key) -----------------------------------------------------------

  /** A new tenant and its API key (shown once).  Needs the admin key. */
  async createTenant(name: string): Promise<Tenant> {
    return new Tenant(await this.call("POST", "/v1/tenants", { body: { name } }));
  }

  // -- credentials -------------------------------------------------------------------

  /** A credential set for one account; its `inbox` takes the account's 2FA mail. */
  async createCredential(name: string, fields: { username?: string; password?: string } = {}): Promise<Credential> {
    return credentialFrom(await this.call("POST", "/v1/credentials", { body: { name, ...fields } }));
  }

  async credential(credential: CredentialRef): Promise<Credential> {
    return credentialFrom(await this.call("GET", "/v1/credentials/{id}", { path: { id: idOf(credential) } }));
  }

  /** Every credential of the tenant (all pages). */
  async credentials(): Promise<Credential[]> {
    const found: Credential[] = [];
    let after: string | null = null;
    for (;;) {
      const params: Record<string, string> = after ? { limit: "1000", after } : { limit: "1000" };
      const answer = await this.http.request("GET", "/v1/credentials", { params, repeatable: true });
      found.push(...answer.body.credentials.map(credentialFrom));
      after = answer.body.next ?? null;
      if (!after) return found;
    }
  }

  /** Change what is given (an absent field is left as it is). */
  async updateCredential(
    credential: CredentialRef,
    fields: { name?: string; username?: string; password?: string },
  ): Promise<Credential> {
    const body = await this.call("PATCH", "/v1/credentials/{id}", {
      path: { id: idOf(credential) },
      body: fields,
      repeatable: true, // setting the same fields twice lands in the same state
    });
    return credentialFrom(body);
  }

  async deleteCredential(credential: CredentialRef): Promise<void> {
    await this.call("DELETE", "/v1/credentials/{id}", { path: { id: idOf(credential) } });
  }

  /** The account's password, for its login form (type it with `fillPassword` rather than handling it). */
  async password(credential: CredentialRef): Promise<string> {
    const body = await this.call("GET", "/v1/credentials/{id}/password", { path: { id: idOf(credential) } });
    return body.password;
  }

  /** Store a TOTP/HOTP secret: `{ otpauthUri }`, or `{ secret, kind }` with its parameters. */
  async setAuthenticator(
    credential: CredentialRef,
    spec:
      | { otpauthUri: string }
      | { secret: string; kind: "totp" | "hotp"; digits?: number; period?: number; algorithm?: string; counter?: number },
  ): Promise<Authenticator> {
    const payload = "otpauthUri" in spec ? { otpauth_uri: spec.otpauthUri } : spec;
    const body = await this.call("PUT", "/v1/credentials/{id}/authenticator", {
      path: { id: idOf(credential) },
      body: payload,
    });
    return authenticatorFrom(body);
  }

  async deleteAuthenticator(credential: CredentialRef): Promise<void> {
    await this.call("DELETE", "/v1/credentials/{id}/authenticator", { path: { id: idOf(credential) } });
  }

  /** Assign an E.164 number: texts to it reach this credential. */
  async setPhone(credential: CredentialRef, phoneNumber: string): Promise<Credential> {
    const body = await this.call("PUT", "/v1/credentials/{id}/phone", {
      path: { id: idOf(credential) },
      body: { phone_number: phoneNumber },
    });
    return credentialFrom(body);
  }

  // -- codes and links ---------------------------------------------------------------

  /**
   * The credential's code `{ code, source }`, or null when none came within
   * `wait` seconds.  With an authenticator: a TOTP code (valid `minValidity`
   * more seconds) or the next HOTP code.  Otherwise the newest code received
   * by mail, text or from a person at or after `since`, handed out once.  A
   * code read is repeated after a broken connection (see `transport`).
   */
  async code(credential: CredentialRef, options: CodeOptions = {}): Promise<Code | null> {
    const params: Record<string, string> = {};
    if (options.minValidity) params.min_validity = String(Math.trunc(options.minValidity));
    if (options.since !== undefined) params.since = isoTime(options.since);
    if (options.source !== undefined) params.source = options.source;
    const answer = await this.http.poll("/v1/credentials/{id}/code", {
      path: { id: idOf(credential) },
      wait: options.wait ?? 0,
      params: () => params,
    });
    return answer.status === 200 ? new Code(answer.body) : null;
  }

  /**
   * Mark now, before the agent makes the site send a code; only a later code is taken.
   *
   *     const pending = await client.expectCode(credentialId);
   *     await page.click("#sign-in");
   *     const got = await pending.code({ wait: 60 });
   *
   * It asks the gateway for the credential (which also reads its clock), so an
   * unknown credential fails here, before anything is sent.
   */
  async expectCode(credential: CredentialRef, options: { source?: string; margin?: number } = {}): Promise<PendingCode> {
    const info = await this.credential(credential);
    return new PendingCode(this, info, this.mark(options.margin), options.source);
  }

  /**
   * The newest sign-in or confirmation link received at or after `since`, once;
   * null when none came within `wait` seconds.  Prefer `expectLink` or a
   * login's `link()`, and open it with `openLink`: the URL signs anyone in.
   */
  async link(credential: CredentialRef, options: { wait?: number; since?: Date | number } = {}): Promise<Link | null> {
    const params: Record<string, string> = options.since === undefined ? {} : { since: isoTime(options.since) };
    const answer = await this.http.poll("/v1/credentials/{id}/link", {
      path: { id: idOf(credential) },
      wait: options.wait ?? 0,
      params: () => params,
    });
    return answer.status === 200 ? new Link(answer.body) : null;
  }

  /** Mark now, before the agent makes the site mail a link; only a later link is taken. */
  async expectLink(credential: CredentialRef, options: { margin?: number } = {}): Promise<PendingLink> {
    const info = await this.credential(credential);
    return new PendingLink(this, info, this.mark(options.margin));
  }

  private mark(margin: number | undefined): number {
    return this.clock.now() - Math.max(0, margin ?? MARGIN);
  }

  // -- logins ------------------------------------------------------------------------

  /**
   * Open a login and return it; the caller finishes it (`withLogin` does that).
   * `LoginInProgress` while another is open, unless `wait` seconds let this
   * one queue behind it.  `ttl` (1-900 s) bounds the login.  Never repeated
   * after a broken connection once it may have arrived.
   */
  async openLogin(credential: CredentialRef, options: { ttl?: number; wait?: number } = {}): Promise<Login> {
    const deadline = monotonic() + Math.max(0, options.wait ?? 0);
    for (;;) {
      const chunk = Math.min(Math.max(0, deadline - monotonic()), MAX_WAIT);
      try {
        const answer = await this.http.request("POST", "/v1/credentials/{id}/logins", {
          path: { id: idOf(credential) },
          body: { ttl: Math.trunc(options.ttl ?? 300), wait: Math.round(chunk * 1000) / 1000 },
          repeatable: false,
          readTimeout: this.http.timeout + chunk + POLL_SLACK,
        });
        return new Login(this.http, answer.body);
      } catch (exc) {
        if (exc instanceof LoginInProgress && deadline - monotonic() > 0) continue;
        throw exc;
      }
    }
  }

  /**
   * Sign in with the account to yourself: opens a login, runs `body` with it,
   * and finishes it: `succeeded` when `body` returns, `failed` when it throws
   * (the error goes on), untouched when `body` finished it itself.
   */
  async withLogin<T>(
    credential: CredentialRef,
    body: (login: Login) => Promise<T>,
    options: { ttl?: number; wait?: number } = {},
  ): Promise<T> {
    const login = await this.openLogin(credential, options);
    let result: T;
    try {
      result = await body(login);
    } catch (exc) {
      if (!login.finished) await login.finish("failed").catch(() => undefined);
      throw exc;
    }
    if (!login.finished) {
      try {
        await login.finish("succeeded" satisfies Outcome);
      } catch (exc) {
        // Ran out of time: the gateway already finished it as failed; the block did its work.
        if (!(exc instanceof Conflict)) throw exc;
      }
    }
    return result;
  }

  // -- backup codes ------------------------------------------------------------------

  /** Replace the credential's backup codes (1 to 50); how many are stored. */
  async setBackupCodes(credential: CredentialRef, codes: string[]): Promise<number> {
    const body = await this.call("PUT", "/v1/credentials/{id}/backup-codes", {
      path: { id: idOf(credential) },
      body: { codes },
    });
    return Number(body.remaining);
  }

  async backupCodesLeft(credential: CredentialRef): Promise<number> {
    const body = await this.call("GET", "/v1/credentials/{id}/backup-codes", { path: { id: idOf(credential) } });
    return Number(body.remaining);
  }

  /**
   * One backup code, handed out once; `NoBackupCodes` when none is left.  Not
   * repeated after a broken connection: a repeat would use up a second code.
   */
  async takeBackupCode(credential: CredentialRef): Promise<BackupCode> {
    return new BackupCode(
      await this.call("POST", "/v1/credentials/{id}/backup-codes/take", { path: { id: idOf(credential) } }),
    );
  }

  // -- interactions ------------------------------------------------------------------

  /**
   * Ask a person for the code, or (`kind: "approval"`) to approve a sign-in.
   * Hand them `submitUrl`.  `match` is the number the site's sign-in screen shows.
   */
  async createInteraction(
    credential: CredentialRef,
    options: { prompt?: string; kind?: "code" | "approval"; match?: string } = {},
  ): Promise<Interaction> {
    const payload: Record<string, string> = {};
    if (options.kind && options.kind !== "code") payload.kind = options.kind;
    if (options.prompt !== undefined) payload.prompt = options.prompt;
    if (options.match !== undefined) payload.match = options.match;
    return new Interaction(
      await this.call("POST", "/v1/credentials/{id}/interactions", { path: { id: idOf(credential) }, body: payload }),
    );
  }

  /** The interaction; with `wait`, as soon as its status leaves `pending`. */
  async interaction(interaction: InteractionRef, options: { wait?: number } = {}): Promise<Interaction> {
    const answer = await this.http.poll("/v1/interactions/{id}", {
      path: { id: idOf(interaction) },
      wait: options.wait ?? 0,
      done: (a) => a.body?.status !== "pending",
    });
    return new Interaction(answer.body);
  }

  /** A person's answer `{ code, source: "user" }` (once), or null while pending after `wait` seconds. */
  async interactionCode(interaction: InteractionRef, options: { wait?: number } = {}): Promise<Code | null> {
    const answer = await this.http.poll("/v1/interactions/{id}/code", {
      path: { id: idOf(interaction) },
      wait: options.wait ?? 0,
    });
    return answer.status === 200 ? new Code(answer.body, "user") : null;
  }

  /** Answer an interaction with the tenant's key (a person uses `submitUrl`). */
  async submitCode(interaction: InteractionRef, code: string): Promise<void> {
    await this.call("POST", "/v1/interactions/{id}/code", { path: { id: idOf(interaction) }, body: { code } });
  }

  /**
   * Approve or deny an approval with the tenant's key.  Repeated after a broken
   * connection: a repeat that finds this very decision recorded counts as done.
   */
  async decide(interaction: InteractionRef, decision: "approved" | "denied"): Promise<void> {
    try {
      await this.call("POST", "/v1/interactions/{id}/decision", {
        path: { id: idOf(interaction) },
        body: { decision },
        repeatable: true,
      });
    } catch (exc) {
      if (!(exc instanceof Conflict) || (await this.interaction(interaction)).status !== decision) throw exc;
    }
  }

  /**
   * Ask a person to approve a sign-in, and wait for the decision.  Opens an
   * approval (`match`: the number the site shows), hands its `submitUrl` to
   * `onSubmitUrl` (printed when absent), and waits up to `wait` seconds.
   * Returns the interaction as it ends: `approved`, `denied` or `expired`
   * (`pending` only when `wait` ran out first); `.approved` says whether to go on.
   */
  async requestApproval(
    credential: CredentialRef,
    options: { match?: string; prompt?: string; wait?: number; onSubmitUrl?: OnSubmitUrl } = {},
  ): Promise<Interaction> {
    const asked = await this.createInteraction(credential, {
      kind: "approval",
      match: options.match,
      prompt: options.prompt,
    });
    await handOver(asked.submitUrl ?? "", options.onSubmitUrl, "approve or deny a sign-in");
    return this.interaction(asked, { wait: options.wait ?? APPROVAL_WAIT });
  }

  // -- webhooks ----------------------------------------------------------------------

  /** An endpoint for events; its `secret` (shown once) verifies the deliveries (`verifyWebhook`). */
  async createWebhook(url: string, events: string[]): Promise<Webhook> {
    return new Webhook(await this.call("POST", "/v1/webhooks", { body: { url, events } }));
  }

  async webhooks(): Promise<Webhook[]> {
    const body = await this.call("GET", "/v1/webhooks");
    return body.webhooks.map((w: Record<string, unknown>) => new Webhook(w));
  }

  async deleteWebhook(webhook: Webhook | string): Promise<void> {
    await this.call("DELETE", "/v1/webhooks/{id}", { path: { id: idOf(webhook) } });
  }
}
