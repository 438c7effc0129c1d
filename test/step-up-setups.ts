import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { SoftAuthenticator } from "./authenticator";
import {
  awayFromStepEdge,
  call,
  codeAt,
  login,
  mailbox,
  makeAdmin,
  ORIGIN,
  PASSWORD,
  registerOptions,
  registerUser,
  sidOf,
  uniqueName,
  userWithTotp,
} from "./helpers";
import { atLocalIdp, callback, socialSignIn } from "./social";

/** The accounts, sessions and ceremonies test/step-up-recipes.ts asks with. */
export const NEW_PASSWORD = "a brand new pass 77";
export const RING = { SIGNING_KEYS: "rotating", KEY_PROPAGATION: "0" } as Partial<Env>;
export const address = () => `${uniqueName("su")}@example.com`;
export const box = mailbox();
export type Check = Record<string, unknown>;

/** One account without a password and two of its sessions: `stale` signed in an hour ago, `fresh` just now. */
export async function passwordless(admin = false) {
  const name = uniqueName("pl");
  const first = await socialSignIn(name);
  if (admin) await makeAdmin(first.user.id); // roles are read at sign-in
  const stale = admin ? await socialSignIn(name) : first;
  const fresh = await socialSignIn(name);
  await env.DB.prepare("UPDATE sessions SET auth_time = ? WHERE id = ?")
    .bind(Date.now() - 3_600_000, sidOf(stale.access_token))
    .run();
  return { userId: first.user.id, stale: stale.access_token, fresh: fresh.access_token };
}

/** A password account (TOTP on if asked): the session of its registration (`token`), and `signedIn`, a sign-in whose code is `spentCode`. */
export async function withPassword(opts: { admin?: boolean; totp?: boolean }) {
  if (!opts.totp) {
    const reg = await registerUser();
    if (opts.admin) await makeAdmin(reg.user.id);
    const token = opts.admin ? (await login(reg.input.username)).body.access_token : reg.access_token;
    return { userId: reg.user.id, token, signedIn: token, spentCode: "", recovery: {} };
  }
  const u = await userWithTotp();
  if (opts.admin) await makeAdmin(u.user.id);
  const first = await login(u.input.username);
  await awayFromStepEdge();
  const spentCode = await codeAt(u.secret);
  const signedIn = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: spentCode } });
  expect(signedIn.status, signedIn.text).toBe(200);
  const token = opts.admin ? signedIn.body.access_token : u.access_token;
  return { userId: u.user.id, token, signedIn: signedIn.body.access_token as string, spentCode, recovery: { recovery_code: u.recoveryCodes[0] } };
}

export async function passkeyOf(userId: string) {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO passkeys (id, user_id, public_key, counter, device_type, backed_up, name, created_at) VALUES (?, ?, 'x', 0, 'singleDevice', 0, 'Old', ?)",
  )
    .bind(id, userId, Date.now())
    .run();
  return id;
}
export async function identityOf(userId: string) {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO identities (id, user_id, provider, issuer, subject, email, email_verified, created_at) VALUES (?, ?, 'local', ?, ?, NULL, 0, ?)",
  )
    .bind(id, userId, "https://elsewhere.example", id, Date.now())
    .run();
  return id;
}

export const setupTotp = (token: string) =>
  call("POST", "/mfa/totp/setup", { token, body: { current_password: PASSWORD } }).then((r) => r.body.secret as string);
export const enable = async (token: string, code: string) => box.send("POST", "/mfa/totp/enable", { token, body: { code } });

/** A link flow asked by `token`'s session, through the provider: the code its exchange takes. */
export async function linkCode(token: string, check: Check = { current_password: PASSWORD }) {
  const asked = await call("POST", "/me/identities/local/link", { token, body: check });
  if (asked.status !== 200) return { asked };
  const url = new URL(asked.body.url);
  const started = await call("GET", url.pathname + url.search);
  const cookie = /oauth_flow=([^;]+)/.exec(started.headers.get("set-cookie") ?? "")![1]!;
  const landing = await callback("local", await atLocalIdp(new URL(started.headers.get("location")!), uniqueName("ln")), cookie);
  return { asked, code: landing.fragment.get("oauth_code")! };
}

/** A passkey registration asked by `token`'s session, signed by a new authenticator. */
export async function passkeyResponse(token: string) {
  const options = await registerOptions(token);
  return { options, response: await new SoftAuthenticator(ORIGIN).register(options) };
}
export const verifyPasskey = (token: string, response: unknown) => call("POST", "/passkeys/register/verify", { token, body: { response, name: "Key" } });

/** A user with a proved address, and a mailed link of theirs of the kind asked. */
export async function mailedLink(kind: "reset-password" | "revoke-way-in") {
  const email = address();
  const u = await registerUser({ email });
  await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
    .bind(Date.now() - 60_000, u.user.id)
    .run();
  if (kind === "reset-password") await box.send("POST", "/password/forgot", { body: { email } });
  else await enable(u.access_token, await codeAt(await setupTotp(u.access_token), -1)); // its notice carries the link
  return { email, token: box.link(email, kind) };
}
export const reset = (token: string) => call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD } });
export const revoke = (token: string) => box.send("POST", "/ways-in/revoke", { body: { token } });
