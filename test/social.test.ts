import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  awayFromStepEdge,
  call,
  codeAt,
  decodeJwtPart,
  expectError,
  forgeToken,
  login,
  mailbox,
  nowSeconds,
  ORIGIN,
  PASSWORD,
  refreshWith,
  registerUser,
  sidOf,
  uniqueName,
} from "./helpers";
import { atLocalIdp, callback, exchange, issuerOf, landingOf, signInLocally, socialSignIn, start } from "./social";

// Social sign-in against real identity providers on loopback (scripts/identity-providers.mjs): the local
// oidc-provider, a crafted issuer for token attacks, and a GitHub stand-in. docs/social-sign-in.md.

const userCount = async () => (await env.DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>())!.n;
const identitiesOf = (userId: string) =>
  env.DB.prepare("SELECT * FROM identities WHERE user_id = ?").bind(userId).all<{ id: string; issuer: string; subject: string }>();

describe("the flow", () => {
  it("start sends the browser to the provider with PKCE S256, state and nonce, and binds the flow to the browser", async () => {
    const trip = await start("local");
    expect(trip.to.origin + trip.to.pathname).toBe(`${issuerOf("local")}/auth`);
    const q = trip.to.searchParams;
    expect(q.get("response_type")).toBe("code");
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("state")).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(q.get("nonce")).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(q.get("redirect_uri")).toBe("http://localhost:8787/oauth/local/callback");
    expect(trip.res.headers.get("set-cookie")).toMatch(/oauth_flow=.+; Max-Age=600; Path=\/oauth; HttpOnly; SameSite=Lax/);
    // Only hashes are kept: neither the state nor the browser's cookie is stored as sent.
    const row = await env.DB.prepare("SELECT * FROM oauth_flows WHERE browser = ? OR id = ?").bind(trip.cookie, trip.state).first();
    expect(row).toBeNull();
  });

  it("a new person signs in through the local IdP (bearer mode): a code in the fragment, exchanged once for tokens", async () => {
    const name = uniqueName("alice");
    const landing = await signInLocally(name);
    expect(landing.to.origin + landing.to.pathname).toBe("http://localhost:5173/");
    expect(landing.fragment.get("oauth")).toBe("sign_in");
    const code = landing.fragment.get("oauth_code")!;
    expect(landing.to.search).toBe(""); // nothing in the query: it would reach the app's server and its logs
    const res = await exchange(code);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ username: name, email: `${name}@example.test` });
    expect(decodeJwtPart(res.body.access_token, 1)).toMatchObject({ amr: ["fed"] });
    // Once only.
    expectError(await exchange(code), 400, "invalid_grant");
    const security = await call("GET", "/me/security", { token: res.body.access_token });
    const kinds = security.body.ways_in.map((w: { kind: string }) => w.kind);
    expect(kinds).toEqual(["email", "identity"]); // no password: this account never had one
    expect(security.body.ways_in[0]).toMatchObject({ verified: true });
    expect(security.body.step_up.change_email).toEqual(["recent_sign_in"]);
  });

  it("the same person again is the same account: identities are keyed by issuer and subject", async () => {
    const name = uniqueName("bob");
    const first = await socialSignIn(name);
    const second = await socialSignIn(name);
    expect(second.user.id).toBe(first.user.id);
    const rows = (await identitiesOf(first.user.id)).results;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ issuer: issuerOf("local"), subject: name });
  });

  it("cookie mode: the callback sets the refresh cookie and the app refreshes with it", async () => {
    const landing = await signInLocally(uniqueName("carol"), { use_cookie: "true" });
    expect(landing.fragment.get("oauth")).toBe("signed_in");
    expect(landing.fragment.has("oauth_code")).toBe(false);
    const cookie = /refresh_token=([^;]+)/.exec(landing.res.headers.get("set-cookie") ?? "")?.[1];
    expect(cookie).toBeTruthy();
    const refreshed = await call("POST", "/refresh", { headers: { cookie: `refresh_token=${cookie}`, origin: ORIGIN } });
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(decodeJwtPart(refreshed.body.access_token, 1)).toMatchObject({ amr: ["fed"] });
  });

  it("return_to must be a page of an allowed app origin", async () => {
    expectError(await call("GET", `/oauth/local/start?return_to=${encodeURIComponent("https://evil.example/")}`), 400, "validation_failed");
    const trip = await start("local", { return_to: "http://localhost:5173/settings?tab=1" });
    const back = await callback("local", await atLocalIdp(trip.to, uniqueName("dora")), trip.cookie);
    expect(back.to.href).toMatch(/^http:\/\/localhost:5173\/settings\?tab=1#oauth=sign_in&oauth_code=/);
  });

  it("an unknown provider is a clear 404", async () => {
    expectError(await call("GET", "/oauth/nope/start"), 404, "unknown_provider");
    const providers = await call("GET", "/oauth/providers");
    expect(providers.body.providers.map((p: { id: string }) => p.id)).toEqual(["local", "crafted", "lax", "impostor", "github", "down", "deaf"]);
  });

  it("the person says no at the provider: the app gets access_denied", async () => {
    const trip = await start("local");
    const back = await callback("local", { error: "access_denied", state: trip.state, iss: issuerOf("local") }, trip.cookie);
    expect(back.fragment.get("oauth_error")).toBe("access_denied");
  });
});

describe("accounts and addresses", () => {
  it("a provider-verified address meeting an account that proved the same address: account_exists, nothing joined, the account untouched", async () => {
    const name = uniqueName("jane");
    const reg = await registerUser({ email: `${name}@example.test` });
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?").bind(Date.now(), reg.user.id).run();
    const account = () =>
      env.DB.prepare("SELECT password_hash, password_version, session_epoch, email, email_verified_at FROM users WHERE id = ?").bind(reg.user.id).first();
    const before = await account();
    const users = await userCount();
    const mail = mailbox();
    const trip = await start("local", { use_cookie: "true" });
    const back = await atLocalIdp(trip.to, name);
    const landing = landingOf(await mail.send("GET", `/oauth/local/callback?${back}`, { headers: { cookie: `oauth_flow=${trip.cookie}` } }));
    expect(landing.fragment.get("oauth_error")).toBe("account_exists");
    expect(landing.fragment.has("oauth_code")).toBe(false);
    expect(landing.res.headers.get("set-cookie") ?? "").not.toMatch(/(refresh_token|oauth_grant)=[^;]/);
    // Nothing joined, nothing made, nothing mailed; the account's password and sessions are as they were.
    expect((await identitiesOf(reg.user.id)).results).toHaveLength(0);
    expect(await userCount()).toBe(users);
    expect(mail.sent).toEqual([]);
    expect(await account()).toEqual(before);
    expect((await login(reg.user.username)).status).toBe(200);
    expect((await call("GET", "/me", { token: reg.access_token })).status).toBe(200);
    expect((await refreshWith(reg.refresh_token)).status).toBe(200);
    const audit = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'social_sign_in_failed' ORDER BY id DESC LIMIT 1").first<{
      detail: string;
    }>();
    expect(JSON.parse(audit!.detail)).toMatchObject({ provider: "local", reason: "account_exists" });
  });

  it("a verified address meeting an account whose address is unproved: account_exists, nothing linked", async () => {
    const name = uniqueName("kim");
    const reg = await registerUser({ email: `${name}@example.test` });
    const landing = await signInLocally(name);
    expect(landing.fragment.get("oauth_error")).toBe("account_exists");
    expect((await identitiesOf(reg.user.id)).results).toHaveLength(0);
  });

  it("an unverified address meeting an existing account: account_exists, even when that account proved it", async () => {
    const name = uniqueName("unverified_lee");
    const reg = await registerUser({ email: `${name}@example.test` });
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?").bind(Date.now(), reg.user.id).run();
    const landing = await signInLocally(name);
    expect(landing.fragment.get("oauth_error")).toBe("account_exists");
    expect((await identitiesOf(reg.user.id)).results).toHaveLength(0);
  });

  it("an address nobody vouches for is not copied to a new account", async () => {
    const name = uniqueName("unverified_max");
    const signedIn = await socialSignIn(name);
    expect(signedIn.user.email).toBeNull();
  });

  it("with sign-up closed, a new person is refused and an existing identity still signs in", async () => {
    const known = uniqueName("nia");
    await socialSignIn(known);
    const closed = { REGISTRATION: "closed" } as Partial<Env>;
    const tripNew = await start("local");
    const backNew = await atLocalIdp(tripNew.to, uniqueName("olga"));
    const refused = await call("GET", `/oauth/local/callback?${backNew}`, { headers: { cookie: `oauth_flow=${tripNew.cookie}` }, bindings: closed });
    expect(refused.headers.get("location")).toMatch(/#oauth_error=registration_closed$/);
    const tripOld = await start("local");
    const backOld = await atLocalIdp(tripOld.to, known);
    const allowed = await call("GET", `/oauth/local/callback?${backOld}`, { headers: { cookie: `oauth_flow=${tripOld.cookie}` }, bindings: closed });
    expect(allowed.headers.get("location")).toMatch(/#oauth=sign_in&oauth_code=/);
  });

  it("a disabled account is told so", async () => {
    const name = uniqueName("pia");
    const first = await socialSignIn(name);
    await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), first.user.id).run();
    expect((await signInLocally(name)).fragment.get("oauth_error")).toBe("account_disabled");
  });

  it("a password sign-in to an account without a password fails like any wrong password", async () => {
    const signedIn = await socialSignIn(uniqueName("quinn"));
    const res = await login(signedIn.user.username, "");
    expect(res.status).toBe(400); // an empty password is invalid input
    const wrong = await login(signedIn.user.username, PASSWORD);
    const unknown = await login(uniqueName("nobody"), PASSWORD);
    expectError(wrong, 401, "invalid_credentials");
    expect(wrong.text).toBe(unknown.text);
  });

  it("with TOTP on, a social sign-in is one factor: the exchange asks for the second step", async () => {
    const name = uniqueName("ray");
    const first = await socialSignIn(name);
    const setup = await call("POST", "/mfa/totp/setup", { token: first.access_token, body: {} });
    expect(setup.status, setup.text).toBe(200);
    await awayFromStepEdge();
    const enabled = await call("POST", "/mfa/totp/enable", { token: first.access_token, body: { code: await codeAt(setup.body.secret, -1) } });
    expect(enabled.status, enabled.text).toBe(200);
    // Cookie mode too: no cookie at the callback, a code for the exchange.
    const landing = await signInLocally(name, { use_cookie: "true" });
    expect(landing.res.headers.get("set-cookie") ?? "").not.toMatch(/refresh_token=[^;]/);
    const step = await exchange(landing.fragment.get("oauth_code")!);
    expect(step.body).toMatchObject({ mfa_required: true });
    const done = await call("POST", "/login/mfa", { body: { challenge: step.body.challenge, code: await codeAt(setup.body.secret) } });
    expect(done.status, done.text).toBe(200);
    expect(decodeJwtPart(done.body.access_token, 1)).toMatchObject({ amr: ["fed", "otp", "mfa"] });
  });
});

describe("linking and unlinking", () => {
  async function linkUrl(token: string, body: Record<string, unknown> = { current_password: PASSWORD }) {
    const res = await call("POST", "/me/identities/local/link", { token, body });
    expect(res.status, res.text).toBe(200);
    return new URL(res.body.url);
  }
  async function linkTrip(url: URL, login: string) {
    const started = await call("GET", url.pathname + url.search);
    expect(started.status, started.text).toBe(302);
    const cookie = /oauth_flow=([^;]+)/.exec(started.headers.get("set-cookie") ?? "")![1]!;
    return callback("local", await atLocalIdp(new URL(started.headers.get("location")!), login), cookie);
  }

  it("a signed-in account links a provider after a step-up, and only its own session can finish it", async () => {
    const reg = await registerUser();
    expectError(
      await call("POST", "/me/identities/local/link", { token: reg.access_token, body: { current_password: "wrong password 1" } }),
      401,
      "invalid_credentials",
    );
    const url = await linkUrl(reg.access_token);
    expect(url.pathname).toBe("/oauth/local/start");
    // The URL is claimed once, by the browser that opens it.
    const name = uniqueName("sam");
    const landing = await linkTrip(url, name);
    expect(await call("GET", url.pathname + url.search).then((r) => r.headers.get("location"))).toMatch(/#oauth_error=invalid_grant$/);
    expect(landing.fragment.get("oauth")).toBe("link");
    const code = landing.fragment.get("oauth_code")!;
    // A lured victim (no token, or another account's) cannot finish it, and the code is then spent.
    const other = await registerUser();
    expectError(await exchange(code, { token: other.access_token }), 400, "invalid_grant");
    const landing2 = await linkTrip(await linkUrl(reg.access_token), name);
    expectError(await exchange(landing2.fragment.get("oauth_code")!), 400, "invalid_grant");
    const landing3 = await linkTrip(await linkUrl(reg.access_token), name);
    const linked = await exchange(landing3.fragment.get("oauth_code")!, { token: reg.access_token });
    expect(linked.status, linked.text).toBe(200);
    expect(linked.body.linked).toMatchObject({ provider: "local" });
    // Now that identity signs in to this account.
    expect((await socialSignIn(name)).user.id).toBe(reg.user.id);
    const security = await call("GET", "/me/security", { token: reg.access_token });
    expect(security.body.ways_in.find((w: { kind: string }) => w.kind === "identity")).toMatchObject({ provider: "local", by_this_session: true });
  });

  it("an identity linked to one account cannot be linked to another", async () => {
    const name = uniqueName("tia");
    await socialSignIn(name);
    const reg = await registerUser();
    const landing = await linkTrip(await linkUrl(reg.access_token), name);
    expectError(await exchange(landing.fragment.get("oauth_code")!, { token: reg.access_token }), 409, "identity_in_use");
  });

  it("unlinking needs a step-up and another way in: an account's only way in stays", async () => {
    const social = await socialSignIn(uniqueName("uma"));
    const [identity] = (await identitiesOf(social.user.id)).results;
    expectError(await call("DELETE", `/me/identities/${identity!.id}`, { token: social.access_token, body: {} }), 409, "last_way_in");
    expect((await identitiesOf(social.user.id)).results).toHaveLength(1);

    const reg = await registerUser();
    const landing = await linkTrip(await linkUrl(reg.access_token), uniqueName("vic"));
    const linked = await exchange(landing.fragment.get("oauth_code")!, { token: reg.access_token });
    expectError(await call("DELETE", `/me/identities/${linked.body.linked.id}`, { token: reg.access_token, body: {} }), 400, "validation_failed");
    const res = await call("DELETE", `/me/identities/${linked.body.linked.id}`, { token: reg.access_token, body: { current_password: PASSWORD } });
    expect(res.status, res.text).toBe(200);
    expect((await identitiesOf(reg.user.id)).results).toHaveLength(0);
    expectError(
      await call("DELETE", `/me/identities/${linked.body.linked.id}`, { token: reg.access_token, body: { current_password: PASSWORD } }),
      404,
      "not_found",
    );
  });

  it("an account without a password proves a step-up by a recent sign-in, as the session's row records it (never a token's claim)", async () => {
    const name = uniqueName("wes");
    const social = await socialSignIn(name);
    await env.DB.prepare("UPDATE sessions SET auth_time = ? WHERE id = ?")
      .bind(Date.now() - 3_600_000, sidOf(social.access_token))
      .run();
    expectError(await call("POST", "/mfa/totp/setup", { token: social.access_token, body: {} }), 401, "reauthentication_required");
    // A token of that session claiming a fresh sign-in (one signed with a leaked key, say) changes nothing.
    const claims = decodeJwtPart(social.access_token, 1);
    const forged = await forgeToken({ claims: { ...claims, jti: crypto.randomUUID(), auth_time: nowSeconds() } });
    expectError(await call("POST", "/mfa/totp/setup", { token: forged, body: {} }), 401, "reauthentication_required");
    // A new sign-in with the provider renews it.
    const again = await socialSignIn(name);
    const fresh = await call("POST", "/mfa/totp/setup", { token: again.access_token, body: {} });
    expect(fresh.status, fresh.text).toBe(200);
  });

  it("such an account has no password to change, and sets one by a mailed link", async () => {
    const name = uniqueName("xan");
    const social = await socialSignIn(name);
    expectError(
      await call("POST", "/password", { token: social.access_token, body: { current_password: "whatever 1", new_password: "battery staple 43" } }),
      409,
      "password_not_set",
    );
    const mail = mailbox();
    await mail.send("POST", "/password/forgot", { body: { email: `${name}@example.test` } });
    const reset = await call("POST", "/password/reset", {
      body: { token: mail.link(`${name}@example.test`, "reset-password"), new_password: "battery staple 43" },
    });
    expect(reset.status, reset.text).toBe(200);
    // The identity vouches for this very address: it stays.
    expect(reset.body).toMatchObject({ identities_removed: 0 });
    expect((await login(name, "battery staple 43")).status).toBe(200);
    expect((await socialSignIn(name)).user.id).toBe(social.user.id);
  });
});

describe("GitHub (OAuth 2, a local stand-in for its REST API)", () => {
  async function github(scenario: string) {
    const trip = await start("github");
    expect(trip.to.pathname).toMatch(/\/login\/oauth\/authorize$/);
    expect(trip.nonce).toBeNull(); // not OpenID: no ID token, so no nonce
    expect(trip.to.searchParams.get("code_challenge_method")).toBe("S256");
    return callback("github", { code: scenario, state: trip.state }, trip.cookie);
  }

  it("the primary, verified address is used", async () => {
    const back = await github("verified");
    const res = await exchange(back.fragment.get("oauth_code")!);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ username: "octo_verified", email: "octo@example.test" });
  });

  it("an unverified primary is not used, nor a verified secondary", async () => {
    const back = await github("secondary");
    const res = await exchange(back.fragment.get("oauth_code")!);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.email).toBeNull();
  });

  it("a wrong code: the stand-in refuses it as GitHub does (200 with an error), and the app is told", async () => {
    const back = await github("not-a-scenario");
    expect(back.fragment.get("oauth_error")).toMatch(/^(provider_error|invalid_response)$/);
  });
});

describe("cost", () => {
  it("D1 round trips of a social sign-in are pinned: start 1; callback 3 (cookie mode, known identity); exchange 3 (bearer mode)", async () => {
    const name = uniqueName("cost");
    await socialSignIn(name); // the account and identity exist: the common case
    const { d1Usage } = await import("./helpers");
    const started = await d1Usage("GET", "/oauth/local/start?use_cookie=true");
    expect(started.res.status).toBe(302);
    expect(started.n).toBe(1); // the flow row
    const cookie = /oauth_flow=([^;]+)/.exec(started.res.headers.get("set-cookie") ?? "")![1]!;
    const back = await atLocalIdp(new URL(started.res.headers.get("location")!), name);
    const landed = await d1Usage("GET", `/oauth/local/callback?${back}`, { headers: { cookie: `oauth_flow=${cookie}` } });
    expect(landed.res.headers.get("location")).toMatch(/#oauth=signed_in$/);
    expect(landed.n).toBe(3); // use the flow; the identity and its account; the session (with the identity's use)
    const bearer = await signInLocally(name);
    const exchanged = await d1Usage("POST", "/oauth/exchange", {
      body: { code: bearer.fragment.get("oauth_code") },
      headers: { cookie: `oauth_grant=${bearer.grant}` },
    });
    expect(exchanged.res.status).toBe(200);
    expect(exchanged.n).toBe(3); // the code; the account; the session
  });
});

describe("a provider that posts back (form_post, as Apple does)", () => {
  it("the posted callback works, and even in cookie mode finishes by the app's exchange (browsers drop a cookie set by a cross-site POST)", async () => {
    const trip = await start("crafted", { use_cookie: "true" });
    const form = new URLSearchParams({ code: `good.${trip.nonce}`, state: trip.state });
    const res = await call("POST", "/oauth/crafted/callback", {
      body: form.toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `oauth_flow=${trip.cookie}` },
    });
    const landing = landingOf(res);
    expect(res.headers.get("location")).toMatch(/#oauth=sign_in&oauth_code=/);
    expect(res.headers.get("set-cookie") ?? "").not.toMatch(/refresh_token=[^;]/);
    // The exchange's cookie comes along with the app's request even though it was set by a cross-site POST.
    expect(res.headers.get("set-cookie")).toMatch(/oauth_grant=[^;]+; Max-Age=60; Path=\/oauth\/exchange; HttpOnly; Secure; SameSite=None/);
    const code = landing.fragment.get("oauth_code")!;
    const done = await exchange(code, { use_cookie: true });
    expect(done.status, done.text).toBe(200);
    expect(done.headers.get("set-cookie")).toMatch(/refresh_token=[^;]+/);
  });
});

describe("a write that fails halfway", () => {
  it("the session write of an exchange fails once: 500, no session is left open, and the spent code says sign in again", async () => {
    const { once } = await import("./helpers");
    const name = uniqueName("yan");
    const first = await socialSignIn(name);
    const landing = await signInLocally(name);
    const code = landing.fragment.get("oauth_code")!;
    const sessionsBefore = (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(first.user.id).first<{ n: number }>())!.n;
    const DB = once(env.DB, "batch", async () => {
      throw new Error("injected: D1 batch failed");
    });
    const failed = await call("POST", "/oauth/exchange", { body: { code }, headers: { cookie: `oauth_grant=${landing.grant}` }, bindings: { DB } });
    expectError(failed, 500, "internal_error");
    expect(failed.text).not.toMatch(/injected/);
    const sessionsAfter = (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(first.user.id).first<{ n: number }>())!.n;
    expect(sessionsAfter).toBe(sessionsBefore);
    // The code was used before the failed batch: single use wins over a retry (documented), and a new sign-in works.
    expectError(await exchange(code), 400, "invalid_grant");
    expect((await socialSignIn(name)).user.id).toBe(first.user.id);
  });
});
