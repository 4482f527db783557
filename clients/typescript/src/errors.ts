/**
 * The SDK's errors, in one place.
 *
 *     OtpgateClientError
 *     ├── ConnectionFailed          the gateway could not be reached, after the retries
 *     ├── CodeTimeout               no code came within the wait
 *     ├── LinkTimeout               no link came within the wait
 *     ├── WebhookVerificationError  a webhook's signature, timestamp or body did not check out
 *     └── ApiError                  the gateway answered an error (`status`, `code`, `message`)
 *         ├── BadRequest            400 malformed input
 *         ├── Unauthorized          401 no or bad API key
 *         ├── Forbidden             403 a valid key that may not do this
 *         ├── NotFound              404 unknown object, or another tenant's
 *         ├── Conflict              409 the object's state forbids it (`already_answered`, ...)
 *         │   ├── LoginInProgress   another login to the account is open (`login_in_progress`)
 *         │   └── NoBackupCodes     none left to take (`no_backup_codes`)
 *         ├── Expired               410 it existed but its time is over (`already_delivered`, ...)
 *         ├── TooLarge              413
 *         ├── Invalid               422 well-formed but not acceptable
 *         ├── RateLimited           429 (`retryAfter` when the gateway said)
 *         └── ServerError           5xx
 *
 * `code` is the gateway's stable snake_case error code and `message` its
 * human text; neither ever holds a secret or a code (the gateway's contract).
 */

export class OtpgateClientError extends Error {
  override get name(): string {
    return this.constructor.name;
  }
}

/**
 * The request got no answer. `maybeProcessed` is false when it certainly never
 * reached the gateway (the connection could not be made), true when it may
 * have (the connection broke after the request was sent).
 */
export class ConnectionFailed extends OtpgateClientError {
  readonly maybeProcessed: boolean;

  constructor(message: string, options: { maybeProcessed: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.maybeProcessed = options.maybeProcessed;
  }
}

/** No code arrived within the wait. */
export class CodeTimeout extends OtpgateClientError {}

/** No sign-in or confirmation link arrived within the wait. */
export class LinkTimeout extends OtpgateClientError {}

/** A webhook delivery did not verify: do not act on it. */
export class WebhookVerificationError extends OtpgateClientError {}

/** The gateway answered with an error status. */
export class ApiError extends OtpgateClientError {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }

  /** The gateway's human text, without the status and code. */
  get detail(): string {
    return this.message.slice(`${this.status} ${this.code}: `.length);
  }
}

/** 400: the request was malformed. */
export class BadRequest extends ApiError {}
/** 401: no API key, or one the gateway does not know. */
export class Unauthorized extends ApiError {}
/** 403: the key is valid but may not do this. */
export class Forbidden extends ApiError {}
/** 404: no such object, or another tenant's. */
export class NotFound extends ApiError {}
/** 409: the object's state forbids it. */
export class Conflict extends ApiError {}
/** 409 `login_in_progress`: another login to this account is open. */
export class LoginInProgress extends Conflict {}
/** 409 `no_backup_codes`: the credential's backup codes are used up. */
export class NoBackupCodes extends Conflict {}
/** 410: the object existed but its time is over, or its code was already handed out. */
export class Expired extends ApiError {}
/** 413: the request body is over a size limit. */
export class TooLarge extends ApiError {}
/** 422: well-formed but not acceptable. */
export class Invalid extends ApiError {}
/** 5xx: the gateway (or a proxy in front of it) failed. */
export class ServerError extends ApiError {}

/** 429: too many attempts; `retryAfter` is in seconds when the gateway said. */
export class RateLimited extends ApiError {
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, retryAfter: number | null) {
    super(status, code, message);
    this.retryAfter = retryAfter;
  }
}

const BY_STATUS: Record<number, typeof ApiError> = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  409: Conflict,
  410: Expired,
  413: TooLarge,
  422: Invalid,
};

const BY_CODE: Record<string, typeof ApiError> = {
  "409 login_in_progress": LoginInProgress,
  "409 no_backup_codes": NoBackupCodes,
};

/** The error for an error answer. */
export function apiError(
  status: number,
  code: string,
  message: string,
  retryAfter: number | null = null,
): ApiError {
  if (status === 429) return new RateLimited(status, code, message, retryAfter);
  if (status >= 500) return new ServerError(status, code, message);
  const cls = BY_CODE[`${status} ${code}`] ?? BY_STATUS[status] ?? ApiError;
  return new cls(status, code, message);
}
