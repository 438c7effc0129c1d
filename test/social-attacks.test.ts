import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { AuthError, createAuthClient } from "../client";
import { sha256Base64Url } from "../src/encoding";
import { call, expectError, uniqueName } from "./helpers";
import { atLocalIdp, callback, craftedCallback, exchange, landingOf, signInLocally, start } from "./social";

// Attacks on social sign-in (docs/security.md "Social sign-in: threats and answers"): the callback,
// the ID token, the code left for the app, and providers that do not answer. The providers are
// real servers on loopback (scripts/identity-providers.mjs).

const userCount = async () => (await env.DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>())!.n;
const sessionCount = async () => (await env.DB.prepare("SELECT count(*) AS n FROM sessions").first<{ n: number }>())!.n;
const newVerifier = () =>
  btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

describe("attacks on the callback", () => {
  it("a missing state, a forged one, or another browser's flow is refused before the provider is asked", async () => {
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("eve"));
    const before = await userCount();
    const noState = new URLSearchParams(back);
    noState.delete("state");
    expect((await callback("local", noState, trip.cookie)).fragment.get("oauth_error")).toBe("invalid_state");
    const forged = new URLSearchParams(back);
    forged.set("state", "forged-state-value-0123456789");
    expect((await callback("local", forged, trip.cookie)).fragment.get("oauth_error")).toBe("invalid_state");
    // Login CSRF: the victim's browser has no flow cookie (or another one).
    expect((await callback("local", back)).fragment.get("oauth_error")).toBe("invalid_state");
    expect((await callback("local", back, "another-browsers-cookie")).fragment.get("oauth_error")).toBe("invalid_state");
    expect(await userCount()).toBe(before);
    // The flow is still whole: its own browser completes it.
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth")).toBe("sign_in");
  });

  it("a replayed callback finds its flow used", async () => {
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("frank"));
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth")).toBe("sign_in");
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth_error")).toBe("invalid_state");
  });

  it("a flow older than ten minutes is refused", async () => {
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("gina"));
    await env.DB.prepare("UPDATE oauth_flows SET expires_at = ? WHERE used_at IS NULL AND expires_at > ?")
      .bind(Date.now() - 1, Date.now())
      .run();
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth_error")).toBe("invalid_state");
  });

  it("an ID token whose nonce is not the flow's is refused (the real IdP, the flow's nonce changed)", async () => {
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("hal"));
    await env.DB.prepare("UPDATE oauth_flows SET nonce = 'not-the-nonce-that-was-sent' WHERE used_at IS NULL").run();
    const before = await userCount();
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth_error")).toBe("invalid_response");
    expect(await userCount()).toBe(before);
  });

  it("the PKCE verifier must match: a changed verifier makes the provider refuse the code", async () => {
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("ivy"));
    await env.DB.prepare("UPDATE oauth_flows SET code_verifier = ? WHERE used_at IS NULL").bind("x".repeat(43)).run();
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth_error")).toBe("provider_error");
  });

  it("the crafted issuer's well-formed answer signs in (so each refusal below is about its one change)", async () => {
    const back = await craftedCallback("good");
    const res = await exchange(back.fragment.get("oauth_code")!);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.email).toBe("crafted@example.test");
  });

  it.each([
    ["other_key", "signed by another key under the issuer's kid"],
    ["unknown_kid", "signed by a key the issuer does not publish"],
    ["wrong_iss", "from another issuer"],
    ["wrong_aud", "for another client"],
    ["extra_aud", "for several clients, authorized for another (azp)"],
    ["expired", "expired"],
    ["wrong_nonce", "with another nonce"],
    ["no_nonce", "without a nonce"],
    ["azp_other", "for this client alone, yet authorized for another party (azp)"],
    ["future_iat", "issued ten minutes in the future (iat)"],
    ["long_lived", "valid for two days (exp - iat over a day)"],
  ])("an ID token %s (%s) is refused, and nobody is signed in", async (scenario) => {
    const before = await userCount();
    const back = await craftedCallback(scenario);
    expect(back.fragment.get("oauth_error")).toBe("invalid_response");
    expect(back.fragment.has("oauth_code")).toBe(false);
    expect(back.res.headers.get("set-cookie") ?? "").not.toMatch(/refresh_token=[^;]/);
    expect(await userCount()).toBe(before);
  });

  it("an azp naming this very client, and an iat less than a minute ahead (a fast clock), are accepted", async () => {
    for (const scenario of ["azp_self", "skewed_iat"]) {
      const back = await craftedCallback(scenario);
      expect(back.fragment.get("oauth"), back.to.hash).toBe("sign_in");
      expect((await exchange(back.fragment.get("oauth_code")!)).status).toBe(200);
    }
  });

  it('an OpenID issuer\'s email_verified "true" (a string, not the boolean) vouches for nothing: the address is not copied', async () => {
    const back = await craftedCallback("string_verified");
    const res = await exchange(back.fragment.get("oauth_code")!);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.email).toBeNull();
    const row = await env.DB.prepare("SELECT email, email_verified FROM identities WHERE subject = 'crafted-string'").first();
    expect(row).toEqual({ email: "crafted-string@example.test", email_verified: 0 });
  });

  it("the failure is logged with its reason, never a token", async () => {
    const back = await craftedCallback("wrong_iss");
    expect(back.fragment.get("oauth_error")).toBe("invalid_response");
    const row = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'social_sign_in_failed' ORDER BY id DESC LIMIT 1").first<{
      detail: string;
    }>();
    expect(JSON.parse(row!.detail)).toMatchObject({ provider: "crafted", reason: "invalid_response" });
    expect(row!.detail).not.toMatch(/eyJ/); // no JWT
  });
});

describe("the code left for the app is bound to the browser that started the flow", () => {
  it("an attacker's unexchanged code, carried into the victim's browser by a link, signs nobody in; its own browser still can", async () => {
    // The attacker signs in to their own account in their own browser (bearer mode) and keeps the code.
    const attacker = uniqueName("mallory");
    const trip = await start("local");
    const landing = await callback("local", await atLocalIdp(trip.to, attacker), trip.cookie);
    const code = landing.fragment.get("oauth_code")!;
    expect(landing.res.headers.get("set-cookie")).toMatch(/oauth_grant=[^;]+; Max-Age=60; Path=\/oauth\/exchange; HttpOnly; SameSite=Lax/);
    // The victim's app page opens https://app/#oauth=sign_in&oauth_code=<code>: its exchange carries
    // no cookie of that flow (none, or the one of the victim's own sign-in), in cookie or bearer mode.
    const victim = await signInLocally(uniqueName("victim"));
    const sessions = await sessionCount();
    expectError(await exchange(code, { use_cookie: true, browser: null }), 400, "invalid_grant");
    expectError(await exchange(code, { use_cookie: true, browser: victim.grant }), 400, "invalid_grant");
    expectError(await exchange(code, { browser: null }), 400, "invalid_grant");
    // A verifier does not stand in for the cookie of a flow started without a code_challenge.
    expectError(await exchange(code, { browser: null, code_verifier: newVerifier() }), 400, "invalid_grant");
    expect(await sessionCount()).toBe(sessions);
    // The refusals did not spend the code: the browser that started the flow finishes it.
    const own = await exchange(code);
    expect(own.status, own.text).toBe(200);
    expect(own.body.user.username).toBe(attacker);
    expect(own.headers.get("set-cookie")).toMatch(/oauth_grant=; Max-Age=0; Path=\/oauth\/exchange/);
  });

  it("a code left by a posted callback (form_post) is bound the same way", async () => {
    const trip = await start("crafted");
    const res = await call("POST", "/oauth/crafted/callback", {
      body: new URLSearchParams({ code: `good.${trip.nonce}`, state: trip.state }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `oauth_flow=${trip.cookie}` },
    });
    const code = landingOf(res).fragment.get("oauth_code")!;
    expectError(await exchange(code, { use_cookie: true, browser: null }), 400, "invalid_grant");
    expect((await exchange(code, { use_cookie: true })).status).toBe(200);
  });

  it("a flow started with a code_challenge is finished only by its code_verifier: not the flow's cookie, not another verifier", async () => {
    const verifier = newVerifier();
    const trip = await start("local", { code_challenge: await sha256Base64Url(verifier) });
    const landing = await callback("local", await atLocalIdp(trip.to, uniqueName("tab")), trip.cookie);
    expect(landing.grant).toBeUndefined(); // nothing to carry: the app holds the proof
    const code = landing.fragment.get("oauth_code")!;
    expectError(await exchange(code, { browser: trip.cookie }), 400, "invalid_grant");
    expectError(await exchange(code, { browser: trip.cookie, code_verifier: newVerifier() }), 400, "invalid_grant");
    // No cookie at all, as from an app on another site in bearer mode (third-party cookies blocked).
    const done = await exchange(code, { browser: null, code_verifier: verifier });
    expect(done.status, done.text).toBe(200);
    expectError(await exchange(code, { browser: null, code_verifier: verifier }), 400, "invalid_grant"); // once
  });

  it("a malformed code_challenge or code_verifier is a validation error", async () => {
    expectError(await call("GET", "/oauth/local/start?code_challenge=short"), 400, "validation_failed");
    const res = await call("POST", "/oauth/exchange", { body: { code: "x", code_verifier: "too short" } });
    expectError(res, 400, "validation_failed");
    expect(res.body.fields).toHaveProperty("code_verifier");
  });
});

describe("the client binds a sign-in to the tab that started it", () => {
  /** A tab's sessionStorage, where the client keeps its secret between signInWith() and completeSignIn(). */
  function tab() {
    const items = new Map<string, string>();
    const storage = {
      getItem: (k: string) => items.get(k) ?? null,
      setItem: (k: string, v: string) => void items.set(k, String(v)),
      removeItem: (k: string) => void items.delete(k),
    };
    (globalThis as { sessionStorage?: unknown }).sessionStorage = storage;
    return items;
  }
  afterEach(() => void delete (globalThis as { sessionStorage?: unknown }).sessionStorage);

  function clientOf(calls: string[] = []) {
    const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      calls.push(`${req.method} ${new URL(req.url).pathname}`);
      return exports.default.fetch(req);
    };
    return createAuthClient({ baseUrl: "http://localhost", fetch: fetch as typeof globalThis.fetch, cookie: false });
  }

  /** The browser's trip from the URL signInWith() gave to the app page the provider sends it back to. */
  async function trip(url: string, login: string) {
    const started = await call("GET", url.replace("http://localhost", ""));
    expect(started.status, started.text).toBe(302);
    const cookie = /oauth_flow=([^;]+)/.exec(started.headers.get("set-cookie") ?? "")![1]!;
    return callback("local", await atLocalIdp(new URL(started.headers.get("location")!), login), cookie);
  }

  it("signInWith keeps a secret in this tab and sends its S256; completeSignIn finishes with it, once", async () => {
    const items = tab();
    const client = clientOf();
    const name = uniqueName("tabby");
    const url = await client.signInWith("local", { navigate: false });
    const [secret] = [...items.values()];
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new URL(url).searchParams.get("code_challenge")).toBe(await sha256Base64Url(secret!));
    const landing = await trip(url, name);
    const done = await client.completeSignIn(landing.to.href);
    expect(done).toMatchObject({ signedIn: true, username: name });
    expect(items.size).toBe(0); // used up
  });

  it("completeSignIn refuses a code this tab did not start, before asking the API; a tab with its own pending sign-in is refused by the API", async () => {
    // The attacker's own sign-in, through the client in their own tab, never finished.
    tab();
    const attacker = clientOf();
    const landing = await trip(await attacker.signInWith("local", { navigate: false }), uniqueName("mallory"));
    // The victim's tab: nothing started here.
    tab();
    const calls: string[] = [];
    const victim = clientOf(calls);
    const refused = await victim.completeSignIn(landing.to.href).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AuthError);
    expect(refused).toMatchObject({ code: "invalid_grant", status: 0 });
    expect((refused as Error).message).toMatch(/not started in this tab/);
    expect(calls).toEqual([]);
    expect(victim.state).toEqual({ signedIn: false });
    // The victim started a sign-in of their own in this tab and came back to the attacker's link instead.
    const items = tab();
    const pending = clientOf(calls);
    await pending.signInWith("local", { navigate: false });
    await expect(pending.completeSignIn(landing.to.href)).rejects.toMatchObject({ code: "invalid_grant", status: 400 });
    expect(pending.state).toEqual({ signedIn: false });
    expect(items.size).toBe(0); // a sign-in came back: this tab's secret is spent either way
  });

  it("without sessionStorage (Workers, Node), the client keeps the secret itself", async () => {
    const client = clientOf();
    const name = uniqueName("nostore");
    const landing = await trip(await client.signInWith("local", { navigate: false }), name);
    await expect(clientOf().completeSignIn(landing.to.href)).rejects.toMatchObject({ code: "invalid_grant", status: 0 });
    expect(await client.completeSignIn(landing.to.href)).toMatchObject({ signedIn: true, username: name });
  });
});

describe("a provider that cannot be reached", () => {
  it("at discovery (nothing listens at its issuer): the browser goes back to the app with provider_unreachable", async () => {
    const res = await call("GET", "/oauth/down/start");
    expect(res.status, res.text).toBe(303);
    expect(res.headers.get("location")).toBe("http://localhost:5173/#oauth_error=provider_unreachable");
  });

  it("at the token endpoint: the callback lands with provider_unreachable, and the audit says where", async () => {
    const trip = await start("deaf");
    const back = await callback("deaf", { code: "any-code", state: trip.state }, trip.cookie);
    expect(back.fragment.get("oauth_error")).toBe("provider_unreachable");
    const row = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'social_sign_in_failed' ORDER BY id DESC LIMIT 1").first<{
      detail: string;
    }>();
    expect(JSON.parse(row!.detail)).toMatchObject({ provider: "deaf", reason: "provider_unreachable", detail: expect.stringMatching(/\/token: /) });
  });
});
