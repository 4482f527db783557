/**
 * HTTP to the gateway: one request, its retries, and the error mapping.
 *
 * Retries happen on connection errors only, never on an answer: a 4xx is the
 * caller's to handle, and a 5xx came from a gateway that did receive the
 * request (repeating it would double whatever it half did).  Which
 * connection errors are retried depends on whether the request may have
 * reached the gateway:
 *
 * - the connection could not be made (refused, DNS, connect timeout): the
 *   request never left, so it is repeated whatever it is;
 * - the connection broke after the request was sent (reset, closed without
 *   an answer, read timeout): the gateway may have acted on it, so it is
 *   repeated only when the caller marked it `repeatable`: reads, `PUT` and
 *   `DELETE` (a repeat lands in the same state), and the code and link reads
 *   (a code read hands out a code once; if its answer was lost that code is
 *   lost either way, and repeating the read is the only way to the next).
 *   A `POST` that creates something, opens a login, takes a backup code or
 *   answers an interaction is not repeated: the caller gets
 *   `ConnectionFailed` with `maybeProcessed: true` and decides.
 *
 * Long polls (`poll`) are split into requests of at most `MAX_WAIT` seconds,
 * below both the gateway's limit (300 s) and Node's fetch, which gives up
 * on an answer whose headers take 300 s.
 *
 * Nothing secret is logged: a line names the method and the route pattern
 * (`/v1/credentials/{id}/code`), never a body, a query or a header.
 */

import { ServerClock, monotonic } from "./clock.js";
import { ConnectionFailed, apiError } from "./errors.js";

/** The longest `wait` asked of the gateway in one request; longer waits are split. */
export const MAX_WAIT = 240;
/** Seconds an answer may take beyond a long poll's wait before the read times out. */
export const POLL_SLACK = 15;

/**
 * How often and how patiently a request is repeated after a connection error.
 * `attempts` counts every try (1: never repeat).  The pause before try n + 1
 * is drawn from [b/2, b] with b = backoff * 2^(n-1), capped at `maxBackoff`
 * (seconds), so agents that lost the same gateway do not all come back at once.
 */
export interface Retry {
  attempts: number;
  backoff: number;
  maxBackoff: number;
}

export const DEFAULT_RETRY: Retry = { attempts: 4, backoff: 0.25, maxBackoff: 4 };

export function pauseBefore(retry: Retry, attempt: number): number {
  const ceiling = Math.min(retry.maxBackoff, retry.backoff * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export interface Answer {
  status: number;
  body: any;
}

type Query = Record<string, string>;

export interface RequestOptions {
  path?: Record<string, string>;
  params?: Query | (() => Query);
  body?: unknown;
  repeatable: boolean;
  readTimeout?: number;
}

/** Errors from Node's fetch (undici) that mean no connection was made. */
const NOT_CONNECTED = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
]);

class Unanswered extends Error {
  constructor(
    readonly reason: string,
    readonly maybeProcessed: boolean,
    readonly original: unknown,
  ) {
    super(reason);
  }
}

function unanswered(exc: unknown): Unanswered {
  const err = exc as { name?: string; cause?: { code?: string; name?: string } };
  if (err?.name === "TimeoutError" || err?.name === "AbortError") {
    return new Unanswered("read timeout", true, exc);
  }
  const code = err?.cause?.code ?? err?.cause?.name ?? err?.name ?? "error";
  return new Unanswered(String(code), !NOT_CONNECTED.has(String(code)), exc);
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

export class Transport {
  readonly baseUrl: string;
  /** An ES private field: `util.inspect` and `JSON.stringify` never show it. */
  readonly #key: string;

  constructor(
    baseUrl: string,
    key: string,
    readonly retry: Retry,
    readonly timeout: number,
    readonly clock: ServerClock,
    private readonly log: ((line: string) => void) | undefined,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(baseUrl);
    } catch {
      throw new TypeError("baseUrl must be an http(s) URL, such as http://127.0.0.1:8080");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError("baseUrl must be an http(s) URL, such as http://127.0.0.1:8080");
    }
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#key = key;
  }

  /**
   * Send one request (repeated as the module says) and return a 2xx answer.
   * Throws an `ApiError` (by status) for an error answer and `ConnectionFailed`
   * when no answer came.
   */
  async request(method: string, route: string, options: RequestOptions): Promise<Answer> {
    const path = options.path ?? {};
    const url =
      this.baseUrl + route.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(path[name] ?? ""));
    const attempts = Math.max(1, this.retry.attempts);
    for (let attempt = 1; ; attempt++) {
      const query = typeof options.params === "function" ? options.params() : options.params;
      try {
        return await this.once(method, route, url, query, options.body, options.readTimeout);
      } catch (exc) {
        if (!(exc instanceof Unanswered)) throw exc;
        const mayRepeat = options.repeatable || !exc.maybeProcessed;
        if (!mayRepeat || attempt >= attempts) {
          const notRepeated = exc.maybeProcessed && !options.repeatable;
          throw new ConnectionFailed(
            `${method} ${route}: no answer from ${this.baseUrl} (${exc.reason}) after ${attempt} ` +
              `${attempt === 1 ? "try" : "tries"}` +
              (notRepeated ? "; it may have been processed, so it was not repeated" : ""),
            { maybeProcessed: exc.maybeProcessed, cause: exc.original },
          );
        }
        const pause = pauseBefore(this.retry, attempt);
        this.log?.(
          `${method} ${route}: ${exc.reason}; trying again in ${pause.toFixed(2)} s ` +
            `(try ${attempt + 1} of ${attempts})`,
        );
        await sleep(pause);
      }
    }
  }

  /**
   * `GET route?wait=` until an answer is `done` or `wait` seconds are over.
   * The wait is split into requests of at most `MAX_WAIT` seconds; a repeated
   * request waits only what is left of its part.  Returns the last answer.
   */
  async poll(
    route: string,
    options: {
      path: Record<string, string>;
      wait: number;
      done?: (answer: Answer) => boolean;
      params?: () => Query;
    },
  ): Promise<Answer> {
    const done = options.done ?? ((answer: Answer) => answer.status === 200);
    const deadline = monotonic() + Math.max(0, options.wait);
    for (;;) {
      const chunk = Math.min(Math.max(0, deadline - monotonic()), MAX_WAIT);
      const chunkEnd = monotonic() + chunk;
      const answer = await this.request("GET", route, {
        path: options.path,
        params: () => ({
          wait: String(Math.round(Math.max(0, chunkEnd - monotonic()) * 1000) / 1000),
          ...(options.params?.() ?? {}),
        }),
        repeatable: true,
        readTimeout: this.timeout + chunk + POLL_SLACK,
      });
      if (done(answer) || deadline - monotonic() <= 0) return answer;
    }
  }

  private async once(
    method: string,
    route: string,
    url: string,
    query: Query | undefined,
    body: unknown,
    readTimeout: number | undefined,
  ): Promise<Answer> {
    const target = new URL(url);
    for (const [k, v] of Object.entries(query ?? {})) target.searchParams.set(k, v);
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.#key}`,
      Accept: "application/json",
      "User-Agent": "otpgate-client-js",
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const signal = AbortSignal.timeout(Math.ceil((readTimeout ?? this.timeout) * 1000));
    const sent = monotonic();
    let response: Response;
    let raw: string;
    try {
      response = await fetch(target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: "manual",
        signal,
      });
      raw = await response.text();
    } catch (exc) {
      throw unanswered(exc);
    }
    const received = monotonic();
    this.clock.observe(response.headers.get("date"), sent, received);
    this.log?.(`${method} ${route} -> ${response.status} in ${Math.round((received - sent) * 1000)} ms`);
    const json = (response.headers.get("content-type") ?? "").startsWith("application/json");
    if (response.status >= 400) throw errorOf(response, raw, json);
    if (response.status === 204 || !raw) return { status: response.status, body: null };
    return { status: response.status, body: json ? JSON.parse(raw) : raw };
  }
}

function errorOf(response: Response, raw: string, json: boolean): Error {
  let code = "http_error";
  let message = response.statusText || `HTTP ${response.status}`;
  if (json) {
    try {
      const err = JSON.parse(raw)?.error ?? {};
      code = String(err.code || code);
      message = String(err.message || message);
    } catch {
      // not the gateway's error shape (a proxy's page): keep the status text
    }
  }
  const after = Number.parseFloat(response.headers.get("retry-after") ?? "");
  return apiError(response.status, code, message, Number.isNaN(after) ? null : after);
}
