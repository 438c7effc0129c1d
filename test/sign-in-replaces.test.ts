import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SIGN_IN_PATHS } from "../src/middleware/refresh-cookie";
import {
  awayFromStepEdge,
  call,
  codeAt,
  d1Usage,
  d1WriteBeforeBatch,
  expectError,
  login,
  ORIGIN,
  PASSWORD,
  refreshWith,
  registerUser,
  sidOf,
  uniqueName,
  userWithPasskey,
  userWithTotp,
} from "./helpers";
import { signInLocally } from "./social";

/**
 * A cookie-mode sign-in ends the session whose refresh cookie it replaces (ASVS 7.2.4): password,
 * second step, passkey, social exchange and sign-up alike, in the sign-in's own batch, and only when
 * the new session is written. The cookie reaches the sign-in routes because it is set on their paths too.
 */

/** A live session of the user as a browser would hold it: its access token and its refresh cookie. */
async function browserSession(username: string) {
  const res = await login(username);
  expect(res.status, res.text).toBe(200);
  return { access: res.body.access_token as string, refresh: res.body.refresh_token as string };
}
const carrying = (refresh: string) => ({ origin: ORIGIN, cookie: `refresh_token=${refresh}` });
const alive = async (s: { access: string; refresh: string }) => (await call("GET", "/protected", { token: s.access })).status === 200;
/** The old session is over: its access token refused, its refresh token dead. */
async function expectEnded(s: { access: string; refresh: string }) {
  expect(await alive(s)).toBe(false);
  expectError(await refreshWith(s.refresh), 401, "invalid_token");
}

describe("a cookie-mode sign-in ends the session of the cookie it replaces", () => {
  it("POST /login: the old session ends, audited; the new one lives; the cookie is set on the sign-in paths too", async () => {
    const reg = await registerUser();
    const old = await browserSession(reg.input.username);
    const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD, use_cookie: true }, headers: carrying(old.refresh) });
    expect(res.status, res.text).toBe(200);
    await expectEnded(old);
    expect((await call("GET", "/protected", { token: res.body.access_token })).status).toBe(200);
    const row = await env.DB.prepare("SELECT user_id, detail FROM audit_events WHERE event = 'session_revoked' AND session_id = ?")
      .bind(sidOf(old.access))
      .first<{ user_id: string; detail: string }>();
    expect(row?.user_id).toBe(reg.user.id);
    expect(JSON.parse(row!.detail)).toEqual({ reason: "replaced_by_sign_in", by: sidOf(res.body.access_token) });
    const paths = res.headers
      .getSetCookie()
      .filter((c) => c.startsWith("refresh_token="))
      .map((c) => /Path=([^;]+)/.exec(c)![1]);
    expect(paths.sort()).toEqual(["/refresh", "/logout", ...SIGN_IN_PATHS].sort());
    expect(SIGN_IN_PATHS).toEqual(expect.arrayContaining(["/login", "/register", "/passkeys/login", "/oauth/exchange"]));
  });

  it("a refused sign-in (a wrong password) ends nothing; nor does a sign-in in JSON mode, which replaces no cookie", async () => {
    const reg = await registerUser();
    const old = await browserSession(reg.input.username);
    const wrong = await call("POST", "/login", {
      body: { username: reg.input.username, password: "wrong password 1", use_cookie: true },
      headers: carrying(old.refresh),
    });
    expectError(wrong, 401, "invalid_credentials");
    const json = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, headers: carrying(old.refresh) });
    expect(json.status).toBe(200);
    expect(await alive(old)).toBe(true);
    expect((await refreshWith(old.refresh)).status).toBe(200);
  });

  it("a sign-in whose session write is refused (the password replaced meanwhile) ends nothing either", async () => {
    const reg = await registerUser();
    const old = await browserSession(reg.input.username);
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET password_hash = 'replaced', password_version = password_version + 1 WHERE id = ?", reg.user.id);
    const res = await call("POST", "/login", {
      body: { username: reg.input.username, password: PASSWORD, use_cookie: true },
      headers: carrying(old.refresh),
      bindings: { DB },
    });
    expectError(res, 401, "invalid_credentials");
    expect(await alive(old)).toBe(true);
    expect((await refreshWith(old.refresh)).status).toBe(200);
  });

  it("two refresh cookies (one planted): neither is trusted, neither session ends, and the sign-in goes on", async () => {
    const reg = await registerUser();
    const a = await browserSession(reg.input.username);
    const b = await browserSession(reg.input.username);
    const res = await call("POST", "/login", {
      body: { username: reg.input.username, password: PASSWORD, use_cookie: true },
      headers: { origin: ORIGIN, cookie: `refresh_token=${a.refresh}; refresh_token=${b.refresh}` },
    });
    expect(res.status, res.text).toBe(200);
    expect(await alive(a)).toBe(true);
    expect(await alive(b)).toBe(true);
  });

  it("POST /register in cookie mode: the cookie's session (another account's) ends", async () => {
    const other = await registerUser();
    const old = await browserSession(other.input.username);
    const res = await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD, use_cookie: true }, headers: carrying(old.refresh) });
    expect(res.status, res.text).toBe(201);
    await expectEnded(old);
  });

  it("POST /login/mfa: the second step ends it (the first step, which opens no session, does not)", async () => {
    const u = await userWithTotp();
    const old = { access: u.access_token, refresh: u.refresh_token };
    const first = await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD, use_cookie: true }, headers: carrying(old.refresh) });
    expect(first.body.mfa_required).toBe(true);
    expect(await alive(old)).toBe(true);
    await awayFromStepEdge();
    const res = await call("POST", "/login/mfa", {
      body: { challenge: first.body.challenge, code: await codeAt(u.secret), use_cookie: true },
      headers: carrying(old.refresh),
    });
    expect(res.status, res.text).toBe(200);
    await expectEnded(old);
  });

  it("a passkey sign-in ends it", async () => {
    const u = await userWithPasskey();
    const old = { access: u.access_token, refresh: u.refresh_token };
    const options = (await call("POST", "/passkeys/login/options")).body.options;
    const res = await call("POST", "/passkeys/login/verify", {
      body: { response: await u.authenticator.assert(options), use_cookie: true },
      headers: carrying(old.refresh),
    });
    expect(res.status, res.text).toBe(200);
    await expectEnded(old);
  });

  it("a social sign-in's exchange ends it", async () => {
    const reg = await registerUser();
    const old = await browserSession(reg.input.username);
    const landing = await signInLocally(uniqueName("rp"));
    const res = await call("POST", "/oauth/exchange", {
      body: { code: landing.fragment.get("oauth_code"), use_cookie: true },
      headers: { origin: ORIGIN, cookie: `oauth_grant=${landing.grant}; refresh_token=${old.refresh}` },
    });
    expect(res.status, res.text).toBe(200);
    await expectEnded(old);
  });

  it("costs no D1 round trip: a cookie-mode login that ends a session is still two", async () => {
    const reg = await registerUser();
    const old = await browserSession(reg.input.username);
    const { res, n } = await d1Usage("POST", "/login", {
      body: { username: reg.input.username, password: PASSWORD, use_cookie: true },
      headers: carrying(old.refresh),
    });
    expect(res.status, res.text).toBe(200);
    expect(n).toBe(2);
    await expectEnded(old);
  });
});
