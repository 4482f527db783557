/**
 * `Login`: one sign-in to a credential's account, as the gateway's login attempt.
 *
 *     await client.withLogin(credentialId, async (login) => {
 *       // make the site send its code or link
 *       const got = await login.code({ wait: 60 });   // only what arrived after the login opened
 *       // refused? await login.reject(), then ask again
 *     });
 *     // a normal return finished it as "succeeded", a throw as "failed"
 *
 * While a login is open, the credential's codes and links go to it alone: a
 * second agent signing in to the same account gets `LoginInProgress`, or
 * queues (`wait`) until the first finishes.  Opening is never repeated after
 * a broken connection (a repeat would meet its own orphan and be refused);
 * reads, `reject` and `finish` are (a repeat only finds its own work done).
 */

import { monotonic } from "./clock.js";
import { CodeTimeout, Conflict, LinkTimeout } from "./errors.js";
import { Code, Link } from "./models.js";
import type { Transport } from "./transport.js";

export type Outcome = "succeeded" | "failed";

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** An open login.  It never holds a code. */
export class Login {
  readonly id: string;
  readonly credentialId: string;
  status = "open";
  startedAt: Date | null = null;
  expiresAt: Date | null = null;
  handedOut = 0;
  /** Something was handed out since the login opened or since the last reject. */
  private handed = false;

  constructor(
    private readonly http: Transport,
    body: Record<string, any>,
  ) {
    this.id = body.id;
    this.credentialId = body.credential_id;
    this.update(body);
  }

  private update(body: Record<string, any>): void {
    this.status = body.status;
    this.startedAt = body.started_at ? new Date(body.started_at) : null;
    this.expiresAt = body.expires_at ? new Date(body.expires_at) : null;
  }

  get finished(): boolean {
    return this.status !== "open";
  }

  /**
   * A code received (or computed) for this login, waiting up to `wait` seconds.
   * `CodeTimeout` when none came; `Expired` once the login finished.  A TOTP
   * code valid for less than `minValidity` more seconds is passed over, once.
   */
  async code(options: { wait?: number; minValidity?: number } = {}): Promise<Code> {
    const wait = options.wait ?? 120;
    const minValidity = options.minValidity ?? 0;
    const deadline = monotonic() + Math.max(0, wait);
    let passedOver = false;
    for (;;) {
      const answer = await this.http.poll("/v1/logins/{id}/code", {
        path: { id: this.id },
        wait: Math.max(0, deadline - monotonic()),
      });
      if (answer.status !== 200) throw new CodeTimeout(`no code for the login within ${wait} s`);
      this.handedOne();
      const got = new Code(answer.body);
      if (got.source !== "totp" || got.expiresAt === null || passedOver) return got;
      const clock = this.http.clock;
      const atMost = got.expiresAt.getTime() / 1000 - clock.now();
      if (atMost - (clock.uncertainty ?? 1) >= minValidity) return got;
      if (atMost > deadline - monotonic()) {
        throw new CodeTimeout(`no TOTP code valid ${minValidity} s more within ${wait} s`);
      }
      await sleep(Math.max(0, atMost) + 0.05);
      passedOver = true;
    }
  }

  /** A sign-in or confirmation link received for this login; `LinkTimeout` when none. */
  async link(options: { wait?: number } = {}): Promise<Link> {
    const wait = options.wait ?? 120;
    const answer = await this.http.poll("/v1/logins/{id}/link", { path: { id: this.id }, wait });
    if (answer.status !== 200) throw new LinkTimeout(`no link for the login within ${wait} s`);
    this.handedOne();
    return new Link(answer.body);
  }

  private handedOne(): void {
    this.handed = true;
    this.handedOut += 1;
  }

  /** The site refused the code or link handed out last: the next one is newer. */
  async reject(): Promise<void> {
    try {
      await this.http.request("POST", "/v1/logins/{id}/reject", { path: { id: this.id }, repeatable: true });
    } catch (exc) {
      // A repeat of a reject the gateway did record finds nothing left to reject.
      if (!(exc instanceof Conflict) || exc.code !== "nothing_handed_out" || !this.handed) throw exc;
    }
    this.handed = false;
  }

  /** End the login as `succeeded` or `failed`: the account is free for the next one. */
  async finish(outcome: Outcome): Promise<void> {
    try {
      const answer = await this.http.request("POST", "/v1/logins/{id}/finish", {
        path: { id: this.id },
        body: { outcome },
        repeatable: true,
      });
      this.update(answer.body);
    } catch (exc) {
      if (!(exc instanceof Conflict) || exc.code !== "login_finished") throw exc;
      await this.refresh();
      if (this.status !== outcome) throw exc; // not a repeat of this very finish
    }
  }

  /** Ask the gateway how the login stands. */
  async refresh(): Promise<Login> {
    const answer = await this.http.request("GET", "/v1/logins/{id}", {
      path: { id: this.id },
      repeatable: true,
    });
    this.update(answer.body);
    return this;
  }
}
