// Type-checked by `npm run build`, never run: a Playwright Page (and Locator) fits
// the helpers' parameters, and their results are booleans.
import { chromium, type Page } from "playwright-core";
import { Client, fillCode, fillPassword, openLink } from "otpgate";

const browser = await chromium.launch();
const page: Page = await browser.newPage();
const client = new Client("http://127.0.0.1:8080", "k");
const ok: boolean = await fillCode(page, "#code", client, "cred_1", { accepted: "#w" });
await fillPassword(page, "#pw", client, "cred_1");
const opened: boolean = await openLink(page, client, "cred_1", {});
console.log(ok, opened);
