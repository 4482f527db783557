/**
 * What an agent waits for after marking the moment it asked: `PendingCode`
 * and `PendingLink` (from `Client.expectCode` and `Client.expectLink`).
 *
 * Only what the gateway received at or after the mark is taken, so a code or
 * link left over from an earlier login is never used.
 *
 * Rejection: the site refused the code (or link) handed out last, so the next
 * one must be newer.  For TOTP, the next time step; for HOTP, the next counter
 * value, which the next request gives anyway; for a received code or link,
 * one received after the refused one.  Not "after the rejection": a site often
 * sends a fresh code as it refuses one, and that code can reach the gateway
 * before the agent has read the refusal; it must not be skipped.
 */

import type { Client } from "./client.js";
import { monotonic } from "./clock.js";
import { CodeTimeout, LinkTimeout } from "./errors.js";
import type { Code, Credential, Link } from "./models.js";

/** How long `pending.code()` and `pending.link()` wait by default (seconds). */
export const DEFAULT_WAIT = 120;

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

class Pending {
  handedOut = 0;

  constructor(
    protected readonly client: Client,
    readonly credential: Credential,
    protected sinceSeconds: number,
  ) {}

  /** The gateway time from which a received code or link is accepted. */
  get since(): Date {
    return new Date(this.sinceSeconds * 1000);
  }

  protected after(receivedAt: Date | null): void {
    if (receivedAt !== null) {
      this.sinceSeconds = Math.max(this.sinceSeconds, receivedAt.getTime() / 1000 + 0.001);
    }
  }
}

/** A code an agent is waiting for, correlated with the moment it asked.  It never holds the code. */
export class PendingCode extends Pending {
  private afterStep: number | null = null;
  private last: Code | null = null;

  constructor(
    client: Client,
    credential: Credential,
    since: number,
    private readonly source: string | undefined,
  ) {
    super(client, credential, since);
  }

  /**
   * The code, waiting up to `wait` seconds; `CodeTimeout` when none came.
   * `minValidity` (TOTP) is capped below the authenticator's period.
   */
  async code(options: { wait?: number; minValidity?: number } = {}): Promise<Code> {
    const wait = options.wait ?? DEFAULT_WAIT;
    let minValidity = options.minValidity ?? 0;
    const auth = this.credential.authenticator;
    if (auth !== null && auth.kind === "totp") minValidity = Math.min(minValidity, auth.period - 1);
    const deadline = monotonic() + Math.max(0, wait);
    for (;;) {
      const got = await this.client.code(this.credential.id, {
        wait: Math.max(0, deadline - monotonic()),
        since: this.sinceSeconds,
        minValidity,
        source: this.source,
      });
      if (got === null) throw new CodeTimeout(`no code for the credential within ${wait} s`);
      const stepEnd = got.expiresAt === null ? 0 : got.expiresAt.getTime() / 1000;
      const refused = this.afterStep;
      if (got.source === "totp" && refused !== null && stepEnd <= refused) {
        // Still the refused step: wait for it to end, by the gateway's clock.
        const pause = refused - this.client.clock.now();
        if (pause > deadline - monotonic()) throw new CodeTimeout(`no new TOTP step within ${wait} s`);
        await sleep(Math.max(0.05, pause));
        continue;
      }
      this.last = got;
      this.handedOut += 1;
      return got;
    }
  }

  /** The site refused the last code: the next `code()` waits for a newer one. */
  reject(): void {
    const last = this.last;
    if (last === null) return;
    if (last.source === "totp" && last.expiresAt !== null) {
      this.afterStep = last.expiresAt.getTime() / 1000;
    } else if (["email", "sms", "user"].includes(last.source)) {
      this.after(last.receivedAt);
    }
    this.last = null;
  }
}

/** A sign-in or confirmation link an agent is waiting for (see `Client.expectLink`). */
export class PendingLink extends Pending {
  private last: Link | null = null;

  /** The link, waiting up to `wait` seconds; `LinkTimeout` when none came. */
  async link(options: { wait?: number } = {}): Promise<Link> {
    const wait = options.wait ?? DEFAULT_WAIT;
    const got = await this.client.link(this.credential.id, { wait, since: this.sinceSeconds });
    if (got === null) throw new LinkTimeout(`no link for the credential within ${wait} s`);
    this.last = got;
    this.handedOut += 1;
    return got;
  }

  /** The site refused the last link: the next `link()` waits for a newer one. */
  reject(): void {
    if (this.last !== null) {
      this.after(this.last.receivedAt);
      this.last = null;
    }
  }
}
