/**
 * What the gateway answers, as small objects that do not show their secrets.
 *
 * A sign-in link, a backup code, a password and a submit link's token are
 * non-enumerable properties: they are there for the code that reads them
 * (`link.url`, `const { code } = backup`), but `console.log`, `util.inspect`
 * and `JSON.stringify` leave them out, so an object that ends up in a log line
 * or a language model's context does not leak them. A `Code` keeps the
 * contract's `{ code, source }` shape and hides its code from `inspect` and
 * `JSON.stringify` instead.
 */

import { inspect } from "node:util";

const custom = inspect.custom;

function hidden<T extends object>(target: T, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, enumerable: false, writable: false });
}

function time(raw: unknown): Date | null {
  return typeof raw === "string" && raw ? new Date(raw) : null;
}

/** A one-time code handed out by the gateway (once). */
export class Code {
  /**
   * The code itself. It is an own enumerable property, so the object has the
   * contract's `{ code, source }` shape (spread, `Object.keys`, deep equality
   * on those two fields); `util.inspect` and `JSON.stringify` still leave it out.
   */
  readonly code: string;
  /** `totp`, `hotp`, `email`, `sms` or `user` (a person gave it). */
  readonly source: string;
  /** The end of a TOTP code's time step. */
  readonly expiresAt: Date | null;
  /** When the gateway received the mail, text or answer (its clock). */
  readonly receivedAt: Date | null;
  readonly sender: string | null;

  constructor(body: Record<string, any>, source?: string) {
    this.code = String(body.code);
    this.source = body.source || source || "user";
    this.expiresAt = time(body.expires_at);
    this.receivedAt = time(body.received_at ?? body.submitted_at);
    this.sender = body.sender ?? null;
  }

  [custom](): string {
    return `Code { source: '${this.source}', code: <${this.code.length} characters> }`;
  }

  toJSON(): Record<string, unknown> {
    return {
      source: this.source,
      expiresAt: this.expiresAt,
      receivedAt: this.receivedAt,
      sender: this.sender,
    };
  }
}

/** A sign-in or confirmation link handed out by the gateway (once); open it, never show it. */
export class Link {
  declare readonly url: string;
  /** `sign_in`, `confirm`, `approve`, `reset` when the gateway could tell. */
  readonly kind: string | null;
  readonly source: string;
  readonly receivedAt: Date | null;
  readonly sender: string | null;

  constructor(body: Record<string, any>) {
    hidden(this, "url", String(body.url));
    this.kind = body.kind ?? null;
    this.source = body.source || "email";
    this.receivedAt = time(body.received_at);
    this.sender = body.sender ?? null;
  }

  [custom](): string {
    return `Link { kind: ${this.kind === null ? "null" : `'${this.kind}'`}, url: <hidden> }`;
  }
}

/** One of a credential's backup codes, handed out once. */
export class BackupCode {
  declare readonly code: string;
  /** How many are left after this one. */
  readonly remaining: number;

  constructor(body: Record<string, any>) {
    hidden(this, "code", String(body.code));
    this.remaining = Number(body.remaining);
  }

  [custom](): string {
    return `BackupCode { code: <${this.code.length} characters>, remaining: ${this.remaining} }`;
  }
}

/** A credential's TOTP/HOTP parameters (the secret never leaves the gateway). */
export interface Authenticator {
  kind: string;
  digits: number;
  period: number;
  algorithm: string;
}

/** One account an agent logs into: `inbox` gets its 2FA mail, `phoneNumber` its texts. */
export interface Credential {
  id: string;
  name: string;
  username: string | null;
  inbox: string;
  phoneNumber: string | null;
  hasPassword: boolean;
  authenticator: Authenticator | null;
}

export function credentialFrom(body: Record<string, any>): Credential {
  const auth = body.authenticator;
  return {
    id: body.id,
    name: body.name,
    username: body.username ?? null,
    inbox: body.inbox,
    phoneNumber: body.phone_number ?? null,
    hasPassword: Boolean(body.has_password),
    authenticator: auth && typeof auth === "object" ? authenticatorFrom(auth) : null,
  };
}

export function authenticatorFrom(body: Record<string, any>): Authenticator {
  return {
    kind: body.kind,
    digits: Number(body.digits),
    period: Number(body.period),
    algorithm: body.algorithm,
  };
}

/**
 * A request for a person to give a code, or to approve a sign-in.  `status` is
 * `pending`, `answered`, `approved`, `denied` or `expired`.  `submitUrl` (only
 * in the answer that created it) carries the single-use token that is the
 * authority to answer: give it to the person, not to a log.
 */
export class Interaction {
  readonly id: string;
  readonly credentialId: string;
  readonly kind: string;
  readonly status: string;
  readonly expiresAt: Date | null;
  readonly prompt: string | null;
  declare readonly submitUrl: string | null;

  constructor(body: Record<string, any>) {
    this.id = body.id;
    this.credentialId = body.credential_id ?? "";
    this.kind = body.kind ?? "code";
    this.status = body.status;
    this.expiresAt = time(body.expires_at);
    this.prompt = body.prompt ?? null;
    hidden(this, "submitUrl", body.submit_url ?? null);
  }

  /** An approval that a person approved. */
  get approved(): boolean {
    return this.status === "approved";
  }

  [custom](): string {
    return `Interaction { id: '${this.id}', kind: '${this.kind}', status: '${this.status}' }`;
  }
}

/** A tenant; `apiKey` is only in the answer that created it. */
export class Tenant {
  readonly id: string;
  readonly name: string;
  declare readonly apiKey: string;

  constructor(body: Record<string, any>) {
    this.id = body.id;
    this.name = body.name;
    hidden(this, "apiKey", body.api_key);
  }
}

/** An endpoint for the tenant's events; `secret` (`whsec_...`) only when created. */
export class Webhook {
  readonly id: string;
  readonly url: string;
  readonly events: string[];
  declare readonly secret: string | null;

  constructor(body: Record<string, any>) {
    this.id = body.id;
    this.url = body.url;
    this.events = [...(body.events ?? [])];
    hidden(this, "secret", body.secret ?? null);
  }
}

/** A verified webhook delivery: `id` is stable across retries (deduplicate on it). */
export interface WebhookEvent {
  id: string;
  type: string;
  timestamp: Date | null;
  data: Record<string, any>;
}

/** A moment (a Date or UNIX seconds) as the gateway reads it: UTC with microseconds. */
export function isoTime(when: Date | number): string {
  const seconds = when instanceof Date ? when.getTime() / 1000 : when;
  const whole = Math.floor(seconds);
  const micros = Math.min(999999, Math.round((seconds - whole) * 1e6));
  const base = new Date(whole * 1000).toISOString().slice(0, 19);
  return `${base}.${String(micros).padStart(6, "0")}Z`;
}
