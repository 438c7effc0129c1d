import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, uniqueName } from "./helpers";
import { atLocalIdp, callback, craftedCallback, exchange, issuerOf, signInLocally, start } from "./social";

// What social sign-in trusts of a federation (docs/social-sign-in.md "Sessions here and at the
// provider", docs/security.md): signatures on ID tokens, which issuer answers (mix-up, metadata),
// how old the provider's authentication may be (SOCIAL_MAX_AGE), and who may start a sign-in.
// The providers are real servers on loopback (scripts/identity-providers.mjs).

const count = async (table: string) => (await env.DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>())!.n;
const users = () => count("users");

/** A landing that signed nobody in: an error in the fragment, no code, no refresh cookie. */
function refused(back: Awaited<ReturnType<typeof callback>>, code: string) {
  expect(back.fragment.get("oauth_error"), back.to.hash).toBe(code);
  expect(back.fragment.has("oauth_code")).toBe(false);
  expect(back.res.headers.get("set-cookie") ?? "").not.toMatch(/(refresh_token|oauth_grant)=[^;]/);
}

describe("signatures on ID tokens", () => {
  it("an unsigned ID token (alg none) is refused, and nobody is signed in", async () => {
    const before = await users();
    refused(await craftedCallback("unsigned"), "invalid_response");
    expect(await users()).toBe(before);
  });

  it("an unsigned ID token is refused even from an issuer whose metadata lists none", async () => {
    const before = await users();
    refused(await craftedCallback("unsigned", "lax", { iss: issuerOf("lax") }), "invalid_response");
    expect(await users()).toBe(before);
    // The same issuer's signed answer signs in: the refusal was about the signature alone.
    const good = await craftedCallback("good", "lax", { iss: issuerOf("lax") });
    expect(good.fragment.get("oauth"), good.to.hash).toBe("sign_in");
  });

  it("an ID token whose signature is stripped is refused, and nobody is signed in", async () => {
    const before = await users();
    refused(await craftedCallback("no_signature"), "invalid_response");
    expect(await users()).toBe(before);
  });
});

describe("mix-up: which provider answers", () => {
  it("one provider's answer sent to another provider's callback is refused, and nobody is signed in", async () => {
    const before = await users();
    // The local IdP's answer (code, state, iss) at the crafted provider's callback, from the browser that started it.
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("mix"));
    refused(await callback("crafted", back, trip.cookie), "invalid_state");
    // A flow started at the crafted provider, and the local IdP's answer under that flow's state at the local callback.
    const other = await start("crafted");
    const swapped = new URLSearchParams(back);
    swapped.set("state", other.state);
    refused(await callback("local", swapped, other.cookie), "invalid_state");
    expect(await users()).toBe(before);
    // The answer at its own callback still signs in: the refusals were about the provider alone.
    expect((await callback("local", back, trip.cookie)).fragment.get("oauth")).toBe("sign_in");
  });

  it("an authorization response whose iss names another issuer is refused (RFC 9207), and nobody is signed in", async () => {
    const before = await users();
    const trip = await start("local");
    const back = await atLocalIdp(trip.to, uniqueName("iss"));
    expect(back.get("iss")).toBe(issuerOf("local"));
    const wrong = new URLSearchParams(back);
    wrong.set("iss", issuerOf("crafted"));
    refused(await callback("local", wrong, trip.cookie), "invalid_response");
    // At the crafted provider too, which does not promise iss: one sent is still checked.
    refused(await craftedCallback("good", "crafted", { iss: issuerOf("local") }), "invalid_response");
    expect(await users()).toBe(before);
  });

  it("a provider whose metadata promises iss (RFC 9207) is refused an answer without one", async () => {
    const before = await users();
    refused(await craftedCallback("good", "lax"), "invalid_response");
    expect(await users()).toBe(before);
    const audit = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'social_sign_in_failed' ORDER BY id DESC LIMIT 1").first<{
      detail: string;
    }>();
    expect(JSON.parse(audit!.detail)).toMatchObject({ provider: "lax", reason: "invalid_response", detail: expect.stringMatching(/iss/) });
  });
});

describe("provider metadata", () => {
  it("a provider whose discovery document names another issuer is refused at the start, and nobody is signed in", async () => {
    const [flows, before] = [await count("oauth_flows"), await users()];
    const res = await call("GET", "/oauth/impostor/start");
    expect(res.status, res.text).toBe(303);
    expect(res.headers.get("location")).toBe("http://localhost:5173/#oauth_error=invalid_response");
    expect(res.headers.get("set-cookie") ?? "").not.toMatch(/oauth_flow=[^;]/);
    expect([await count("oauth_flows"), await users()]).toEqual([flows, before]);
  });
});

describe("how old the provider's authentication may be (SOCIAL_MAX_AGE)", () => {
  it("the start asks OpenID providers for max_age = SOCIAL_MAX_AGE; GitHub has no such parameter", async () => {
    expect((await start("local")).to.searchParams.get("max_age")).toBe("86400");
    const short = await call("GET", "/oauth/crafted/start", { bindings: { SOCIAL_MAX_AGE: "600" } as Partial<Env> });
    expect(new URL(short.headers.get("location") ?? "").searchParams.get("max_age")).toBe("600");
    expect((await start("github")).to.searchParams.has("max_age")).toBe(false);
  });

  it("an ID token whose auth_time is older than SOCIAL_MAX_AGE is refused, and nobody is signed in", async () => {
    const before = await users();
    refused(await craftedCallback("old_auth_time"), "invalid_response");
    expect(await users()).toBe(before);
  });

  it("an ID token without auth_time, when max_age was sent, is refused", async () => {
    const before = await users();
    refused(await craftedCallback("no_auth_time"), "invalid_response");
    expect(await users()).toBe(before);
  });

  it("a fresh auth_time signs in, and the limit is SOCIAL_MAX_AGE's: two days old passes under a month", async () => {
    const fresh = await craftedCallback("good", "crafted", {}, { SOCIAL_MAX_AGE: "300" } as Partial<Env>);
    expect(fresh.fragment.get("oauth"), fresh.to.hash).toBe("sign_in");
    expect((await exchange(fresh.fragment.get("oauth_code")!)).status).toBe(200);
    const month = await craftedCallback("old_auth_time", "crafted", {}, { SOCIAL_MAX_AGE: "2592000" } as Partial<Env>);
    expect(month.fragment.get("oauth"), month.to.hash).toBe("sign_in");
  });

  it("the local oidc-provider honours max_age: its ID token carries an auth_time within it, and the sign-in completes", async () => {
    const landing = await signInLocally(uniqueName("fresh"));
    expect(landing.trip.to.searchParams.get("max_age")).toBe("86400");
    // The oidc kind requires auth_time once max_age is sent: a sign-in that lands proves the IdP answered it.
    expect(landing.fragment.get("oauth"), landing.to.hash).toBe("sign_in");
  });
});

describe("a sign-in starts from the app, never silently from another site", () => {
  const startWith = (headers: Record<string, string>) => call("GET", "/oauth/local/start?use_cookie=true", { headers });

  it("a start another site sends the browser to is refused: 403 forbidden, no flow, nobody signed in", async () => {
    const [flows, before] = [await count("oauth_flows"), await users()];
    const lures: Record<string, string>[] = [
      { "sec-fetch-site": "cross-site", referer: "https://evil.example/lure" },
      { "sec-fetch-site": "cross-site" }, // a page that hides its Referer
      { "sec-fetch-site": "cross-site", referer: "http://localhost:5173.evil.example/" },
    ];
    for (const headers of lures) {
      const res = await startWith(headers);
      expectError(res, 403, "forbidden");
      expect(res.body.message).toMatch(/starts from the app/);
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    expect([await count("oauth_flows"), await users()]).toEqual([flows, before]);
  });

  it("a start from the app's page (on another site too), a same-site or typed one, and one without Sec-Fetch-Site go on to the provider", async () => {
    const fromTheApp: Record<string, string>[] = [
      { "sec-fetch-site": "cross-site", referer: "http://localhost:5173/login" }, // CORS_ORIGINS and APP_URL's origin
      { "sec-fetch-site": "same-site", referer: "http://localhost:5173/" },
      { "sec-fetch-site": "same-origin" },
      { "sec-fetch-site": "none" },
      {},
    ];
    for (const headers of fromTheApp) {
      const res = await startWith(headers);
      expect(res.status, `${JSON.stringify(headers)}: ${res.text}`).toBe(302);
      expect(res.headers.get("location")).toMatch(new RegExp(`^${issuerOf("local")}/auth\\?`));
    }
  });
});
