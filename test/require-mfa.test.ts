import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { applyRecoveries } from "../src/cron";
import { SoftAuthenticator } from "./authenticator";
import {
  awayFromStepEdge,
  type CallOptions,
  call,
  codeAt,
  decodeJwtPart,
  documentedOperations,
  expectError,
  mailbox,
  makeAdmin,
  ORIGIN,
  PASSWORD,
  registerOptions,
  registerUser,
  userWithPasskey,
  userWithTotp,
} from "./helpers";
import { socialSignIn } from "./social";

/**
 * REQUIRE_MFA (docs/second-factors.md): an account it applies to that holds no second factor gets
 * enrolment-only sessions, whose tokens every route refuses (403 mfa_enrolment_required) but the
 * enrolment path; the next refresh after enrolment is full; the last second factor cannot be removed.
 */

const ALL = { REQUIRE_MFA: "all" } as Partial<Env>;
const ADMINS = { REQUIRE_MFA: "roles:admin" } as Partial<Env>;
const as = (bindings: Partial<Env>, opts: CallOptions = {}): CallOptions => ({ ...opts, bindings });

const enrolmentClaim = (token: string) => decodeJwtPart(token, 1).mfa_enrolment;
const login = (username: string, bindings: Partial<Env>) => call("POST", "/login", as(bindings, { body: { username, password: PASSWORD } }));
const refresh = (refresh_token: string, bindings: Partial<Env>) =>
  call("POST", "/refresh", as(bindings, { body: { refresh_token }, headers: { "cf-connecting-ip": "10.201.0.1", "user-agent": "TestBrowser/1.0" } }));

/** A password account without a second factor, signed in while `bindings` apply. */
async function signedInWithout(bindings: Partial<Env> = ALL) {
  const reg = await registerUser();
  const res = await login(reg.input.username, bindings);
  expect(res.status, res.text).toBe(200);
  return { ...reg, access_token: res.body.access_token as string, refresh_token: res.body.refresh_token as string };
}

/** The routes an enrolment-only token may use (everything else refuses it). */
const ENROLMENT_PATH = new Set([
  "POST /mfa/totp/setup",
  "POST /mfa/totp/enable",
  "POST /passkeys/register/options",
  "POST /passkeys/register/verify",
  "GET /me",
  "GET /me/security",
  "POST /logout",
]);

describe("REQUIRE_MFA", () => {
  it('"off" changes nothing: a password sign-in without a second factor is a full session', async () => {
    const u = await signedInWithout({ REQUIRE_MFA: "off" } as Partial<Env>);
    expect(enrolmentClaim(u.access_token)).toBeUndefined();
    expect((await call("GET", "/sessions", as({ REQUIRE_MFA: "off" } as Partial<Env>, { token: u.access_token }))).status).toBe(200);
    const again = await refresh(u.refresh_token, { REQUIRE_MFA: "off" } as Partial<Env>);
    expect(enrolmentClaim(again.body.access_token)).toBeUndefined();
  });

  it('"all": a sign-up, a password sign-in and a refresh of an account without a second factor are enrolment-only', async () => {
    const signedUp = await call("POST", "/register", as(ALL, { body: { username: `u_${crypto.randomUUID().slice(0, 8)}`, password: PASSWORD } }));
    expect(signedUp.status, signedUp.text).toBe(201);
    expect(enrolmentClaim(signedUp.body.access_token)).toBe(true);
    const u = await signedInWithout();
    expect(enrolmentClaim(u.access_token)).toBe(true);
    const again = await refresh(u.refresh_token, ALL);
    expect(again.status, again.text).toBe(200);
    expect(enrolmentClaim(again.body.access_token)).toBe(true);
  });

  it("every route outside the enrolment path refuses the enrolment token with 403 mfa_enrolment_required", async () => {
    const u = await signedInWithout();
    const operations = (await documentedOperations()).filter((op) => op.security?.some((s) => "bearerAuth" in s));
    // GET /oauth2/userinfo takes an app's token, never this API's own (401 for any of ours).
    const refused = operations.filter((op) => !ENROLMENT_PATH.has(`${op.method} ${op.template}`) && !op.template.startsWith("/oauth2/userinfo"));
    expect(refused.length).toBeGreaterThan(40); // every route group: account, sessions, orgs, keys, apps, consent, admin...
    for (const op of refused) {
      const path = op.template.replace(/\{[^}]+\}/g, "x1");
      const res = await call(op.method, path, as(ALL, { token: u.access_token, body: op.method === "GET" ? undefined : {} }));
      expect(`${op.method} ${op.template} ${res.status} ${res.body?.error}`).toBe(`${op.method} ${op.template} 403 mfa_enrolment_required`);
    }
    // The same token is a valid one: the enrolment path answers it.
    const me = await call("GET", "/me", as(ALL, { token: u.access_token }));
    expect(me.status, me.text).toBe(200);
    expect(me.body.user.id).toBe(u.user.id);
  });

  it("the enrolment token sets TOTP up with the password it just signed in with; the next refresh is a full token", async () => {
    const u = await signedInWithout();
    const setup = await call("POST", "/mfa/totp/setup", as(ALL, { token: u.access_token, body: { current_password: PASSWORD } }));
    expect(setup.status, setup.text).toBe(200);
    await awayFromStepEdge();
    const enabled = await call("POST", "/mfa/totp/enable", as(ALL, { token: u.access_token, body: { code: await codeAt(setup.body.secret, -1) } }));
    expect(enabled.status, enabled.text).toBe(200);
    // The token in hand stays enrolment-only until it is refreshed.
    expectError(await call("GET", "/sessions", as(ALL, { token: u.access_token })), 403, "mfa_enrolment_required");
    const full = await refresh(u.refresh_token, ALL);
    expect(full.status, full.text).toBe(200);
    expect(enrolmentClaim(full.body.access_token)).toBeUndefined();
    expect((await call("GET", "/sessions", as(ALL, { token: full.body.access_token }))).status).toBe(200);
    // Signing in again asks the second step, then opens a full session.
    const again = await login(u.input.username, ALL);
    expect(again.body.mfa_required, again.text).toBe(true);
  });

  it("an account without a password (a social sign-up) enrols TOTP in its enrolment session on its recent sign-in alone", async () => {
    const social = await socialSignIn(`enrol_${Date.now()}`);
    const enrolling = await refresh(social.refresh_token, ALL); // the same sign-in, now under the policy
    expect(enrolmentClaim(enrolling.body.access_token)).toBe(true);
    const setup = await call("POST", "/mfa/totp/setup", as(ALL, { token: enrolling.body.access_token, body: {} }));
    expect(setup.status, setup.text).toBe(200);
    await awayFromStepEdge();
    const enabled = await call("POST", "/mfa/totp/enable", as(ALL, { token: enrolling.body.access_token, body: { code: await codeAt(setup.body.secret) } }));
    expect(enabled.status, enabled.text).toBe(200);
    expect(enrolmentClaim((await refresh(enrolling.body.refresh_token, ALL)).body.access_token)).toBeUndefined();
  });

  it("the enrolment token registers a passkey; the next refresh is a full token", async () => {
    const u = await signedInWithout();
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await call("POST", "/passkeys/register/options", as(ALL, { token: u.access_token, body: { current_password: PASSWORD } }));
    expect(options.status, options.text).toBe(200);
    const stored = await call("POST", "/passkeys/register/verify", {
      ...as(ALL, { token: u.access_token }),
      body: { response: await authenticator.register(options.body.options), name: "Laptop" },
    });
    expect(stored.status, stored.text).toBe(201);
    const full = await refresh(u.refresh_token, ALL);
    expect(enrolmentClaim(full.body.access_token)).toBeUndefined();
    expect((await call("POST", "/organizations", as(ALL, { token: full.body.access_token, body: {} }))).status).not.toBe(403);
  });

  it("the enrolment token logs out, and its session is over", async () => {
    const u = await signedInWithout();
    expect((await call("POST", "/logout", as(ALL, { token: u.access_token }))).status).toBe(200);
    expectError(await refresh(u.refresh_token, ALL), 401, "invalid_token");
  });

  it("a passkey sign-in (two factors already) and a sign-in with TOTP are full sessions", async () => {
    const p = await userWithPasskey();
    const options = await call("POST", "/passkeys/login/options");
    const signedIn = await call("POST", "/passkeys/login/verify", as(ALL, { body: { response: await p.authenticator.assert(options.body.options) } }));
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(enrolmentClaim(signedIn.body.access_token)).toBeUndefined();
    const t = await userWithTotp();
    const first = await login(t.input.username, ALL);
    await awayFromStepEdge();
    const second = await call("POST", "/login/mfa", as(ALL, { body: { challenge: first.body.challenge, code: await codeAt(t.secret) } }));
    expect(second.status, second.text).toBe(200);
    expect(enrolmentClaim(second.body.access_token)).toBeUndefined();
  });

  it('"roles:admin" applies to admins only', async () => {
    const plain = await signedInWithout(ADMINS);
    expect(enrolmentClaim(plain.access_token)).toBeUndefined();
    expect((await call("GET", "/sessions", as(ADMINS, { token: plain.access_token }))).status).toBe(200);
    const admin = await registerUser();
    await makeAdmin(admin.user.id);
    const signedIn = await login(admin.input.username, ADMINS);
    expect(signedIn.body.user.roles).toContain("admin");
    expect(enrolmentClaim(signedIn.body.access_token)).toBe(true);
    expectError(await call("GET", "/admin/users", as(ADMINS, { token: signedIn.body.access_token })), 403, "mfa_enrolment_required");
    // Made an admin while signed in: the next refresh reads the role, and the policy with it.
    const promoted = await signedInWithout(ADMINS);
    await makeAdmin(promoted.user.id);
    expect(enrolmentClaim((await refresh(promoted.refresh_token, ADMINS)).body.access_token)).toBe(true);
  });

  it("guests are exempt (nothing to protect yet); the account they upgrade to is not", async () => {
    const u = await signedInWithout({ REQUIRE_MFA: "off" } as Partial<Env>);
    await env.DB.prepare("UPDATE users SET is_guest = 1 WHERE id = ?").bind(u.user.id).run();
    const asGuest = await refresh(u.refresh_token, ALL);
    expect(asGuest.status, asGuest.text).toBe(200);
    expect(enrolmentClaim(asGuest.body.access_token)).toBeUndefined();
    await env.DB.prepare("UPDATE users SET is_guest = 0 WHERE id = ?").bind(u.user.id).run();
    expect(enrolmentClaim((await refresh(asGuest.body.refresh_token, ALL)).body.access_token)).toBe(true);
  });

  it("the last second factor cannot be removed: TOTP off, or the only passkey, is 409 mfa_required", async () => {
    const t = await userWithTotp();
    await awayFromStepEdge();
    const off = await call("POST", "/mfa/totp/disable", as(ALL, { token: t.access_token, body: { current_password: PASSWORD, code: await codeAt(t.secret) } }));
    expectError(off, 409, "mfa_required");
    expect((await env.DB.prepare("SELECT totp_enabled_at FROM users WHERE id = ?").bind(t.user.id).first())?.totp_enabled_at).not.toBeNull();

    const p = await userWithPasskey();
    const remove = (token: string, id: string) => call("DELETE", `/passkeys/${id}`, as(ALL, { token, body: { current_password: PASSWORD } }));
    expectError(await remove(p.access_token, p.passkey.id), 409, "mfa_required");
    // With a second passkey, the first may go; then the second is the last again.
    const second = new SoftAuthenticator(ORIGIN);
    const options = await registerOptions(p.access_token);
    const added = await call("POST", "/passkeys/register/verify", { token: p.access_token, body: { response: await second.register(options), name: "Phone" } });
    expect(added.status, added.text).toBe(201);
    expect((await remove(p.access_token, p.passkey.id)).status).toBe(200);
    expectError(await remove(p.access_token, added.body.id), 409, "mfa_required");
    // Where the policy does not apply, the same removal goes through.
    expect((await call("DELETE", `/passkeys/${added.body.id}`, { token: p.access_token, body: { current_password: PASSWORD } })).status).toBe(200);
  });

  it("with TOTP and a passkey, either may go while the other stays", async () => {
    const t = await userWithTotp();
    await awayFromStepEdge();
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await registerOptions(t.access_token, { current_password: PASSWORD, code: await codeAt(t.secret) });
    const added = await call("POST", "/passkeys/register/verify", {
      token: t.access_token,
      body: { response: await authenticator.register(options), name: "Key" },
    });
    expect(added.status, added.text).toBe(201);
    const off = await call(
      "POST",
      "/mfa/totp/disable",
      as(ALL, { token: t.access_token, body: { current_password: PASSWORD, recovery_code: t.recoveryCodes[0] } }),
    );
    expect(off.status, off.text).toBe(200);
    expectError(
      await call("DELETE", `/passkeys/${added.body.id}`, as(ALL, { token: t.access_token, body: { current_password: PASSWORD } })),
      409,
      "mfa_required",
    );
  });

  it("an app cannot get a grant from an enrolment session: the consent routes refuse it", async () => {
    const u = await signedInWithout();
    for (const [method, path] of [
      ["GET", "/oauth2/requests/abc"],
      ["POST", "/oauth2/requests/abc/approve"],
    ] as const) {
      expectError(await call(method, path, as(ALL, { token: u.access_token })), 403, "mfa_enrolment_required");
    }
  });

  it("a held reset that removed TOTP set up before the address was proved gives the mailbox's owner an enrolment session, never a full one", async () => {
    const box = mailbox();
    const email = `held_${Date.now()}@example.com`;
    const squatter = await userWithTotp(email); // TOTP set up before anyone proved the address
    await box.send("POST", "/password/forgot", { body: { email } });
    const held = await box.send("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "the address owner 1" } });
    expect(held.body.takes_effect_at, held.text).toEqual(expect.any(String));
    const withNew = () => call("POST", "/login", as(ALL, { body: { username: squatter.input.username, password: "the address owner 1" } }));
    expectError(await withNew(), 401, "invalid_credentials"); // nothing changes before the wait
    await applyRecoveries(env, new Date(Date.parse(held.body.takes_effect_at) + 1000));
    const owner = await withNew();
    expect(owner.status, owner.text).toBe(200);
    expect(enrolmentClaim(owner.body.access_token)).toBe(true);
  });
});
