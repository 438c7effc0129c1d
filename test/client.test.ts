import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuthError, type AuthState, createAuthClient, deviceName } from "../client";
import worker from "../src/index";
import { decodeJwtPart, expectDocumented, forgeToken, inOneLimiterWindow, nowSeconds, PASSWORD, randomIp, uniqueName } from "./helpers";

/**
 * The typed client (client/index.ts) against the real worker, in token mode (no browser here; the
 * cookie mode and tabs are proved in Chromium by the e2e tests).
 */

interface Traffic {
  calls: string[];
}

/** The worker's own fetch as the client's fetch, one client address per client, every call recorded. */
function viaWorker(traffic: Traffic = { calls: [] }, tamper?: (path: string, res: Response) => Promise<Response>) {
  const ip = randomIp();
  const fetcher = async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    req.headers.set("cf-connecting-ip", ip);
    const path = new URL(req.url).pathname;
    traffic.calls.push(`${req.method} ${path}`);
    const res = await exports.default.fetch(req);
    // What the client receives is checked against /openapi.json like every other answer.
    const text = await res.clone().text();
    await expectDocumented(req.method, path, res, text ? JSON.parse(text) : undefined);
    return tamper ? tamper(path, res) : res;
  };
  return { fetch: fetcher as typeof fetch, traffic };
}

const newUser = () => ({ username: uniqueName("client"), password: PASSWORD });

describe("the typed client", () => {
  it("registers, calls Bearer routes, and tells listeners about signing in and out", async () => {
    const { fetch } = viaWorker();
    const client = createAuthClient({ baseUrl: "http://localhost", fetch, cookie: false });
    const states: AuthState[] = [];
    client.onChange((s) => states.push(s));
    const user = await client.register(newUser());
    expect(client.state).toEqual({ signedIn: true, userId: user.id, username: user.username });
    expect((await client.me()).user.id).toBe(user.id);
    expect((await client.protected()).user_id).toBe(user.id);
    const { sessions } = await client.sessions();
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    await client.logout();
    expect(client.state).toEqual({ signedIn: false });
    expect(states.map((s) => s.signedIn)).toEqual([true, false]);
    await expect(client.me()).rejects.toMatchObject({ code: "invalid_token", status: 401 });
  });

  it("in token mode with no refresh token, says signed out without calling /refresh", async () => {
    const traffic: Traffic = { calls: [] };
    const client = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker(traffic).fetch, cookie: false });
    // Never signed in: nothing to refresh with, so nothing is sent.
    await expect(client.me()).rejects.toMatchObject({ code: "invalid_token", status: 401 });
    await expect(client.me()).rejects.toThrow("Signed out: sign in again");
    await client.register(newUser());
    await client.logout();
    traffic.calls.length = 0;
    // Signed out: the same, and the logout forgot the refresh token too.
    await expect(client.protected()).rejects.toThrow("Signed out: sign in again");
    expect(traffic.calls).toEqual([]);
  });

  it("meets 401 with one refresh for ten parallel calls, then each retries once", async () => {
    const traffic: Traffic = { calls: [] };
    const input = newUser();
    // The login answer carries an access token that has already expired (signed by the server's key).
    const { fetch } = viaWorker(traffic, async (path, res) => {
      if (path !== "/login") return res;
      const body = await res.json<{ access_token: string }>();
      const claims = decodeJwtPart(body.access_token, 1);
      const expired = await forgeToken({ claims: { ...claims, iat: nowSeconds() - 1000, exp: nowSeconds() - 10 } });
      return Response.json({ ...body, access_token: expired });
    });
    const setup = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker().fetch, cookie: false });
    await setup.register(input);
    // The client goes by expires_in (900 s), so it sends the expired token and every call meets the 401.
    const client = createAuthClient({ baseUrl: "http://localhost", fetch, cookie: false });
    await client.login(input);
    traffic.calls.length = 0;
    const results = await Promise.all(Array.from({ length: 10 }, () => client.protected()));
    expect(results.every((r) => r.username === input.username)).toBe(true);
    expect(traffic.calls.filter((c) => c === "POST /refresh")).toHaveLength(1);
    expect(traffic.calls.filter((c) => c === "GET /protected")).toHaveLength(20);
  });

  it("refreshes a token about to expire before the call, once for many calls", async () => {
    const traffic: Traffic = { calls: [] };
    const { fetch } = viaWorker(traffic);
    // Every token counts as about to expire: each batch of calls refreshes once first.
    const client = createAuthClient({ baseUrl: "http://localhost", fetch, cookie: false, refreshLeeway: 10_000 });
    await client.register(newUser());
    traffic.calls.length = 0;
    await Promise.all(Array.from({ length: 5 }, () => client.me()));
    expect(traffic.calls.filter((c) => c === "POST /refresh")).toHaveLength(1);
    expect(traffic.calls.filter((c) => c === "GET /me")).toHaveLength(5);
  });

  it("goes by expires_in, not the token's exp: a device clock two minutes fast does not refresh on every call", async () => {
    const traffic: Traffic = { calls: [] };
    const ip = randomIp();
    // Access tokens of 60 s, and a client whose clock runs 120 s ahead of the server's.
    const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      req.headers.set("cf-connecting-ip", ip);
      traffic.calls.push(`${req.method} ${new URL(req.url).pathname}`);
      return worker.fetch(req, { ...env, ACCESS_TOKEN_TTL: "60" });
    }) as typeof fetch;
    const realNow = Date.now;
    Date.now = () => realNow() + 120_000;
    try {
      const client = createAuthClient({ baseUrl: "http://localhost", fetch: fetcher, cookie: false });
      await client.register(newUser());
      for (let i = 0; i < 3; i++) await client.me();
    } finally {
      Date.now = realNow;
    }
    expect(traffic.calls.filter((c) => c === "POST /refresh")).toHaveLength(0);
  });

  it("logs out in token mode even when the access token has expired: the session ends on the server", async () => {
    const input = newUser();
    const setup = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker().fetch, cookie: false });
    const user = await setup.register(input);
    const { fetch } = viaWorker({ calls: [] }, async (path, res) => {
      if (path !== "/login") return res;
      const body = await res.json<{ access_token: string }>();
      const expired = await forgeToken({ claims: { ...decodeJwtPart(body.access_token, 1), iat: nowSeconds() - 1000, exp: nowSeconds() - 10 } });
      return Response.json({ ...body, access_token: expired });
    });
    const client = createAuthClient({ baseUrl: "http://localhost", fetch, cookie: false });
    await client.login(input);
    await client.logout();
    expect(client.state.signedIn).toBe(false);
    const live = await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ? AND revoked_at IS NULL").bind(user.id).first<{ n: number }>();
    expect(live!.n).toBe(1); // the registration's session only; the login's is over
  });

  it("keeps a listener's own failure out of the call, and a 2xx without a token is a bad_response", async () => {
    const client = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker().fetch, cookie: false });
    client.onChange(() => {
      throw new Error("listener bug");
    });
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (e: unknown) => void errors.push(e);
    try {
      await client.register(newUser());
    } finally {
      console.error = original;
    }
    expect(client.state.signedIn).toBe(true);
    expect(errors).toHaveLength(1);
    const odd = createAuthClient({
      baseUrl: "http://localhost",
      cookie: false,
      fetch: (async () => Response.json({ user: {}, access_token: 42 })) as typeof fetch,
    });
    await expect(odd.login(newUser())).rejects.toMatchObject({ code: "bad_response" });
  });

  it("turns API errors into AuthError with code, status, fields and retryAfter", async () => {
    const { fetch } = viaWorker();
    const client = createAuthClient({ baseUrl: "http://localhost", fetch, cookie: false });
    const invalid = await client.register({ username: "x", password: "short" }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(AuthError);
    expect(invalid).toMatchObject({ code: "validation_failed", status: 400, fields: { username: expect.any(String), password: expect.any(String) } });
    await expect(client.login({ username: uniqueName("ghost"), password: "wrong password 1" })).rejects.toMatchObject({
      code: "invalid_credentials",
      status: 401,
    });
    // Registrations from one address are limited to 10 a minute (counted within one limiter window).
    await inOneLimiterWindow();
    let limited: unknown;
    for (let i = 0; i < 11 && !limited; i++)
      limited = await client.register(newUser()).then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(limited).toMatchObject({ code: "rate_limited", status: 429, retryAfter: 60 });
  }, 20_000);

  it("turns network failures, non-JSON and 5xx answers into AuthError, never undefined", async () => {
    const down = createAuthClient({
      baseUrl: "http://localhost",
      cookie: false,
      fetch: (async () => {
        throw new TypeError("Failed to fetch");
      }) as typeof fetch,
    });
    await expect(down.login(newUser())).rejects.toMatchObject({ code: "network_error", status: 0 });
    const proxy = createAuthClient({
      baseUrl: "http://localhost",
      cookie: false,
      fetch: (async () => new Response("<html>Bad gateway</html>", { status: 502 })) as typeof fetch,
    });
    await expect(proxy.login(newUser())).rejects.toMatchObject({ code: "bad_response", status: 502 });
    const broken = createAuthClient({
      baseUrl: "http://localhost",
      cookie: false,
      fetch: (async () => Response.json({ error: "internal_error", message: "Something went wrong" }, { status: 500 })) as typeof fetch,
    });
    await expect(broken.login(newUser())).rejects.toMatchObject({ code: "internal_error", status: 500 });
    const odd = createAuthClient({
      baseUrl: "http://localhost",
      cookie: false,
      fetch: (async () => Response.json({ nope: 1 }, { status: 503 })) as typeof fetch,
    });
    await expect(odd.login(newUser())).rejects.toMatchObject({ code: "bad_response", status: 503 });
  });

  it("changes the password and logs out everywhere through the same refresh-and-retry path", async () => {
    const { fetch } = viaWorker();
    const client = createAuthClient({ baseUrl: "http://localhost", fetch, cookie: false });
    const input = newUser();
    await client.register(input);
    const other = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker().fetch, cookie: false });
    await other.login(input);
    expect((await client.changePassword({ current_password: PASSWORD, new_password: "brand new secret 7" })).sessions_revoked).toBe(1);
    await expect(other.me()).rejects.toMatchObject({ code: "invalid_token" });
    expect(other.state.signedIn).toBe(false); // its refresh failed too: signed out
    await expect(client.logoutEverywhere()).rejects.toMatchObject({ code: "validation_failed" }); // the step-up end_sessions
    expect((await client.logoutEverywhere({ current_password: "brand new secret 7" })).sessions_revoked).toBe(1);
    expect(client.state.signedIn).toBe(false);
  });
});

describe("deviceName", () => {
  it("names the common browsers and systems from real User-Agent strings, and falls back readably", () => {
    const cases: [string | null, string][] = [
      ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on Linux"],
      ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"],
      ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari on macOS"],
      [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Safari on iOS",
      ],
      [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "Chrome on iOS",
      ],
      ["Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", "Chrome on Android"],
      ["Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"],
      ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0", "Opera on Windows"],
      ["Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on ChromeOS"],
      ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Chrome on Linux"],
      ["curl/8.5.0", "curl"],
      ["PhoneBrowser/1.0", "PhoneBrowser"],
      ["SomeApp/2 (Linux)", "A browser on Linux"],
      ["", "Unknown device"],
      [null, "Unknown device"],
    ];
    for (const [ua, name] of cases) expect(deviceName(ua), String(ua)).toBe(name);
  });
});
