/**
 * Verify the gateway's webhook deliveries on your side (Standard Webhooks).
 *
 *     import { verifyWebhook } from "otpgate";
 *     const event = await verifyWebhook(rawBody, req.headers, secret);   // or [old, new]
 *     if (event.type === "interaction.code_required") notify(event.data.submit_url);
 *
 * It wraps the `standardwebhooks` package (the specification's reference
 * implementation), loaded only when called so the rest of the SDK does not
 * need it: `npm install standardwebhooks`.  Verify the raw body exactly as it
 * came, before any JSON parsing; deduplicate on `event.id` (stable across the
 * gateway's retries).  During the 24 hours after a secret rotation pass both
 * secrets (the gateway signs with both).
 */

import { WebhookVerificationError } from "./errors.js";
import type { WebhookEvent } from "./models.js";

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function plainHeaders(headers: HeaderBag): Record<string, string> {
  const plain: Record<string, string> = {};
  const entries: Iterable<[string, unknown]> =
    headers instanceof Headers ? headers.entries() : Object.entries(headers);
  for (const [name, value] of entries) {
    if (value === undefined) continue;
    plain[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return plain;
}

async function library(): Promise<{ Webhook: any; WebhookVerificationError: any }> {
  let mod: any;
  try {
    mod = await import("standardwebhooks");
  } catch {
    throw new Error("verifying webhooks needs the standardwebhooks package: npm install standardwebhooks");
  }
  return mod.Webhook ? mod : mod.default;
}

/**
 * The delivery's event, once its signature and timestamp check out with a secret.
 * Throws `WebhookVerificationError` for a bad or missing signature, a timestamp
 * more than five minutes off, or a body that is not an event.
 */
export async function verifyWebhook(
  body: string | Uint8Array,
  headers: HeaderBag,
  secret: string | string[],
): Promise<WebhookEvent> {
  const { Webhook, WebhookVerificationError: LibraryError } = await library();
  const secrets = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0) throw new TypeError("give at least one webhook secret");
  const plain = plainHeaders(headers);
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  for (const one of secrets) {
    try {
      new Webhook(one).verify(text, plain, { jsonParse: false });
    } catch (exc) {
      if (exc instanceof LibraryError) {
        const message = String((exc as Error).message);
        if (/signature/i.test(message) && secrets.length > 1) continue; // perhaps another secret signed it
        throw new WebhookVerificationError(`the webhook did not verify: ${message}`);
      }
      // A malformed secret or signature header (the library's base64 decoder throws).
      throw new WebhookVerificationError("the webhook's signature header (or the secret) is malformed");
    }
    return eventOf(plain["webhook-id"] ?? "", text);
  }
  throw new WebhookVerificationError("the webhook did not verify: no matching signature");
}

function eventOf(id: string, text: string): WebhookEvent {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new WebhookVerificationError("the webhook's body is not JSON");
  }
  if (doc === null || typeof doc !== "object" || typeof doc.type !== "string") {
    throw new WebhookVerificationError("the webhook's body is not an event");
  }
  const data = doc.data && typeof doc.data === "object" ? doc.data : {};
  return { id, type: doc.type, timestamp: doc.timestamp ? new Date(doc.timestamp) : null, data };
}
