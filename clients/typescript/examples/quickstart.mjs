import { Client } from "otpgate";

const client = new Client(process.env.OTPGATE_URL ?? "http://127.0.0.1:8080", process.env.OTPGATE_API_KEY ?? "");
const cred = await client.createCredential("GitHub bot", { username: "bot@example.com" });
await client.setAuthenticator(cred, { otpauthUri: "otpauth://totp/GitHub:bot?secret=JBSWY3DPEHPK3PXP&issuer=GitHub" });
const pending = await client.expectCode(cred); // only a code that comes after this moment
// here the agent clicks "Sign in", which makes the site send the code
const got = await pending.code({ wait: 60 }); // { code, source }; got.code is what to type
console.log(got); // Code { source: 'totp', code: <6 characters> }
