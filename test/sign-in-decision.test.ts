import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  awayFromStepEdge,
  call,
  codeAt,
  d1WriteBeforeBatch,
  decodeJwtPart,
  expectError,
  login,
  mailbox,
  PASSWORD,
  registerUser,
  uniqueName,
  userWithPasskey,
  userWithTotp,
} from "./helpers";
import { exchange, signInLocally, socialSignIn } from "./social";

/**
 * The one sign-in decision (src/auth/core/decision.ts), driven through every way in: a right first
 * factor (a password, a provider's word, a passkey) or a completed second step is refused as the
 * account stands, asks the second step, or opens a session, the same way whichever way it came.
 */

const disable = (userId: string) => env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), userId).run();
const enable = (userId: string) => env.DB.prepare("UPDATE users SET disabled_at = NULL WHERE id = ?").bind(userId).run();
const sessionsOf = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;
/** The reasons of the user's login_failed rows, oldest first. */
const refusals = async (userId: string) =>
  (
    await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'login_failed' AND user_id = ? ORDER BY id").bind(userId).all<{ detail: string }>()
  ).results.map((r) => JSON.parse(r.detail).reason as string);
const passkeySignIn = async (u: Awaited<ReturnType<typeof userWithPasskey>>, opts: Parameters<typeof call>[2] = {}) => {
  const options = (await call("POST", "/passkeys/login/options")).body.options;
  return call("POST", "/passkeys/login/verify", { ...opts, body: { response: await u.authenticator.assert(options) } });
};
/** Turns TOTP on for a signed-in account; `check` is its step-up (an account without a password: none). */
async function turnOnTotp(token: string, check: Record<string, string> = { current_password: PASSWORD }) {
  const setup = await call("POST", "/mfa/totp/setup", { token, body: check });
  expect(setup.status, setup.text).toBe(200);
  await awayFromStepEdge();
  const enabled = await call("POST", "/mfa/totp/enable", { token, body: { code: await codeAt(setup.body.secret, -1) } });
  expect(enabled.status, enabled.text).toBe(200);
  return setup.body.secret as string;
}

describe("a disabled account is refused the same way by every way in", () => {
  it("password, passkey, a social callback and exchange, and a second step: 403 account_disabled, audited, no session", async () => {
    const pw = await registerUser();
    const pk = await userWithPasskey();
    const name = uniqueName("sid");
    const social = await socialSignIn(name);
    const totp = await userWithTotp();
    // A social code left before the account was disabled, and a second step half done.
    const pending = (await signInLocally(name)).fragment.get("oauth_code")!;
    const challenge = (await login(totp.input.username)).body.challenge as string;
    const ids = [pw.user.id, pk.user.id, social.user.id, totp.user.id];
    for (const id of ids) await disable(id);
    const before = await Promise.all(ids.map(sessionsOf));

    expectError(await login(pw.input.username), 403, "account_disabled");
    expectError(await passkeySignIn(pk), 403, "account_disabled");
    expect((await signInLocally(name)).fragment.get("oauth_error")).toBe("account_disabled");
    expectError(await exchange(pending), 403, "account_disabled");
    expectError(await call("POST", "/login/mfa", { body: { challenge, recovery_code: totp.recoveryCodes[0] } }), 403, "account_disabled");
    // Also with TOTP on, the password alone learns it is disabled: no second step is asked.
    expectError(await login(totp.input.username), 403, "account_disabled");

    expect(await Promise.all(ids.map(sessionsOf))).toEqual(before);
    expect(await refusals(pw.user.id)).toEqual(["account_disabled"]);
    expect(await refusals(pk.user.id)).toEqual(["account_disabled"]);
    expect(await refusals(social.user.id)).toEqual(["account_disabled", "account_disabled"]);
    expect(await refusals(totp.user.id)).toEqual(["account_disabled", "account_disabled"]);
  });

  it("a refusal spends nothing of the way in: the recovery code and the challenge still work once the account is enabled again", async () => {
    const u = await userWithTotp();
    const challenge = (await login(u.input.username)).body.challenge as string;
    await disable(u.user.id);
    expectError(await call("POST", "/login/mfa", { body: { challenge, recovery_code: u.recoveryCodes[0] } }), 403, "account_disabled");
    await enable(u.user.id);
    const done = await call("POST", "/login/mfa", { body: { challenge, recovery_code: u.recoveryCodes[0] } });
    expect(done.status, done.text).toBe(200);
  });
});

describe("TOTP on: a factor that does not sign in alone asks the second step, one that does opens the session", () => {
  it("a password asks the second step; the session it then opens is pwd, otp, mfa", async () => {
    const u = await userWithTotp();
    const sessions = await sessionsOf(u.user.id);
    const first = await login(u.input.username);
    expect(first.body).toMatchObject({ mfa_required: true });
    expect(first.body.access_token).toBeUndefined();
    expect(await sessionsOf(u.user.id)).toBe(sessions);
    await awayFromStepEdge();
    const done = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(u.secret) } });
    expect(done.status, done.text).toBe(200);
    expect(decodeJwtPart(done.body.access_token, 1)).toMatchObject({ amr: ["pwd", "otp", "mfa"] });
  });

  it("a social sign-in asks the second step, in cookie mode too; the session it then opens is fed, otp, mfa", async () => {
    const name = uniqueName("tia");
    const secret = await turnOnTotp((await socialSignIn(name)).access_token, {});
    const landing = await signInLocally(name, { use_cookie: "true" });
    expect(landing.fragment.get("oauth")).toBe("sign_in");
    expect(landing.res.headers.get("set-cookie") ?? "").not.toMatch(/refresh_token=[^;]/);
    const step = await exchange(landing.fragment.get("oauth_code")!);
    expect(step.body).toMatchObject({ mfa_required: true });
    await awayFromStepEdge();
    const done = await call("POST", "/login/mfa", { body: { challenge: step.body.challenge, code: await codeAt(secret) } });
    expect(done.status, done.text).toBe(200);
    expect(decodeJwtPart(done.body.access_token, 1)).toMatchObject({ amr: ["fed", "otp", "mfa"] });
  });

  it("a passkey opens the session directly: amr hwk and mfa, auth_time the sign-in", async () => {
    const u = await userWithPasskey();
    await turnOnTotp(u.access_token);
    const res = await passkeySignIn(u);
    expect(res.status, res.text).toBe(200);
    const claims = decodeJwtPart(res.body.access_token, 1);
    expect(claims).toMatchObject({ amr: ["hwk", "mfa"] });
    expect(Math.abs((claims.auth_time as number) - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe("what the decision rested on, changed before the session's write: the way's own code", () => {
  // Another request's write landing just before the session's batch (a password sign-in's second:
  // the first finds the account and starts its check; a social exchange's first and only).
  const totpOnBefore = (n: number, userId: string) =>
    d1WriteBeforeBatch(n, "UPDATE users SET totp_enabled_at = ?, totp_secret = 'x' WHERE id = ?", Date.now(), userId);

  it("TOTP turned on meanwhile refuses a password sign-in (invalid_credentials) and a social exchange (invalid_grant)", async () => {
    const reg = await registerUser();
    const body = { username: reg.input.username, password: PASSWORD };
    expectError(await call("POST", "/login", { body, bindings: { DB: totpOnBefore(2, reg.user.id) } }), 401, "invalid_credentials");
    const name = uniqueName("uma");
    const social = await socialSignIn(name);
    const landing = await signInLocally(name);
    const exchanged = await call("POST", "/oauth/exchange", {
      body: { code: landing.fragment.get("oauth_code") },
      headers: { cookie: `oauth_grant=${landing.grant}` },
      bindings: { DB: totpOnBefore(1, social.user.id) },
    });
    expectError(exchanged, 400, "invalid_grant");
    expect([await sessionsOf(reg.user.id), await sessionsOf(social.user.id)]).toEqual([1, 1]);
    expect(await refusals(reg.user.id)).toEqual(["changed_during_login"]);
    expect(await refusals(social.user.id)).toEqual(["changed_during_login"]);
  });
});

describe("sign-up asks the same decision, and both sign-ups build the new user's row the same way", () => {
  it("REQUIRE_VERIFIED_EMAIL on: no first session until the address is verified; off: one, amr pwd", async () => {
    const on = { REQUIRE_VERIFIED_EMAIL: "on" } as Partial<Env>;
    const box = mailbox();
    const held = await box.send("POST", "/register", {
      body: { username: uniqueName(), email: `${uniqueName("vf")}@example.com`, password: PASSWORD },
      bindings: on,
    });
    expect(held.status, held.text).toBe(201);
    expect(held.body.access_token).toBeUndefined();
    expect(await sessionsOf(held.body.user.id)).toBe(0);
    const open = await registerUser();
    expect(decodeJwtPart(open.access_token, 1)).toMatchObject({ amr: ["pwd"] });
  });

  it("a password sign-up and a social sign-up: the same defaults; what differs is the password and who set it", async () => {
    const reg = await registerUser({ email: `${uniqueName("nu")}@example.com` });
    const social = await socialSignIn(uniqueName("nia"));
    const row = (id: string) => env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(id).first<Record<string, unknown>>();
    const [a, b] = [(await row(reg.user.id))!, (await row(social.user.id))!];
    const same = [
      "password_version",
      "roles",
      "failed_logins",
      "locked_until",
      "disabled_at",
      "session_epoch",
      "totp_secret",
      "totp_enabled_at",
      "totp_last_step",
      "recovery_codes",
    ];
    for (const column of same) expect([column, a[column]]).toEqual([column, b[column]]);
    expect(a).toMatchObject({ roles: '["user"]', session_epoch: 0, email_verified_at: null, password_set_by: expect.any(String) });
    expect(a.email_set_by).toBe(a.password_set_by); // the registration's own session
    expect(b).toMatchObject({ password_hash: "", password_set_at: null, password_set_by: null, email_set_by: null, email_verified_at: expect.any(Number) });
  });
});

describe("an unverified address where one is required: the same refusal, and a fresh link, by password and passkey", () => {
  it("403 email_unverified, a new verification link mailed, no session", async () => {
    const on = { REQUIRE_VERIFIED_EMAIL: "on" } as Partial<Env>;
    const email = `${uniqueName("ev")}@example.com`;
    const u = await userWithPasskey({ email }); // signed up while the service did not require it
    const box = mailbox();
    const sessions = await sessionsOf(u.user.id);
    const byPassword = await box.send("POST", "/login", { body: { username: u.input.username, password: PASSWORD }, bindings: on });
    expectError(byPassword, 403, "email_unverified");
    const first = box.link(email, "verify-email");
    const options = (await call("POST", "/passkeys/login/options")).body.options;
    const byPasskey = await box.send("POST", "/passkeys/login/verify", { body: { response: await u.authenticator.assert(options) }, bindings: on });
    expectError(byPasskey, 403, "email_unverified");
    expect(box.link(email, "verify-email")).not.toBe(first);
    expect(await sessionsOf(u.user.id)).toBe(sessions);
    expect(await refusals(u.user.id)).toEqual(["email_unverified", "email_unverified"]);
  });
});
