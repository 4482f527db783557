/**
 * otpgate for Node: the gateway's API (`Client`), typed errors, webhook
 * verification, and Playwright helpers that type a code or open a sign-in
 * link without the agent's language model ever seeing it.
 *
 *     import { Client } from "otpgate";
 *     const client = new Client("http://127.0.0.1:8080", process.env.OTPGATE_API_KEY);
 *     const got = await client.code(credentialId, { wait: 60 });   // { code, source } or null
 */

export { Client, MARGIN, APPROVAL_WAIT } from "./client.js";
export type { ClientOptions, CodeOptions, CredentialRef, InteractionRef, OnSubmitUrl } from "./client.js";
export { ServerClock } from "./clock.js";
export {
  ApiError,
  BadRequest,
  CodeTimeout,
  Conflict,
  ConnectionFailed,
  Expired,
  Forbidden,
  Invalid,
  LinkTimeout,
  LoginInProgress,
  NoBackupCodes,
  NotFound,
  OtpgateClientError,
  RateLimited,
  ServerError,
  TooLarge,
  Unauthorized,
  WebhookVerificationError,
} from "./errors.js";
export { Login } from "./logins.js";
export type { Outcome } from "./logins.js";
export { BackupCode, Code, Interaction, Link, Tenant, Webhook } from "./models.js";
export type { Authenticator, Credential, WebhookEvent } from "./models.js";
export { DEFAULT_WAIT, PendingCode, PendingLink } from "./pending.js";
export { DEFAULT_RETRY, MAX_WAIT } from "./transport.js";
export type { Retry } from "./transport.js";
export { verifyWebhook } from "./webhooks.js";
export { fillCode, fillPassword, openLink } from "./browser.js";
export type { FillCodeOptions, FillResult, LinkResult, LocatorLike, OpenLinkOptions, PageLike } from "./browser.js";
