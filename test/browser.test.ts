import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { SIGN_IN_PATHS } from "../src/middleware/refresh-cookie";
import { call, decodeJwtPart, expectError, forgeToken, nowSeconds, PASSWORD, registerUser, uniqueName } from "./helpers";

const APP = "http://localhost:5173"; // CORS_ORIGINS in wrangler.toml
// The refresh and logout paths, and the sign-in routes' (whose sign-in ends the session the cookie names).
const COOKIE_PATHS = ["/logout", "/refresh", ...SIGN_IN_PATHS].sort();
const EVIL = "https://evil.example";

function refreshCookies(res: Response | { headers: Headers }) {
  return res.headers.getSetCookie().filter((c) => c.startsWith("refresh_token="));
}
/** The refresh cookies of an answer, asserted to be there (one per path) before a test looks at each. */
function bothRefreshCookies(res: Response | { headers: Headers }) {
  const cookies = refreshCookies(res);
  expect(cookies.map((c) => /Path=([^;]+)/.exec(c)?.[1]).sort()).toEqual(COOKIE_PATHS);
  return cookies;
}
const cookieValue = (setCookie: string) => setCookie.split(";")[0]!.slice("refresh_token=".length);

async function cookieLogin(origin = APP, base?: string) {
  const reg = await registerUser();
  const res = await call("POST", "/login", {
    body: { username: reg.input.username, password: PASSWORD, use_cookie: true },
    headers: { origin },
    ...(base ? { base } : {}),
  });
  return { reg, res };
}

describe("CORS", () => {
  it("answers a preflight from an allowed origin with an exact echo, credentials and a cache time", async () => {
    const res = await call("OPTIONS", "/login", {
      headers: { origin: APP, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-max-age")).toBe("600");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(res.headers.get("vary")).toMatch(/origin/i);
  });

  it("gives a foreign origin no CORS grant, on preflight or on a request", async () => {
    const pre = await call("OPTIONS", "/login", { headers: { origin: EVIL, "access-control-request-method": "POST" } });
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    const get = await call("GET", "/", { headers: { origin: EVIL } });
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("grants an allowed origin on error answers too, so the app can read the error", async () => {
    const res = await call("GET", "/me", { headers: { origin: APP } });
    expectError(res, 401, "invalid_token");
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("www-authenticate");
  });

  it("answers a request without Origin (a server, curl) with no CORS grant but Vary: Origin, so a cache keeps it apart", async () => {
    for (const res of [await call("GET", "/"), await call("GET", "/health"), await call("GET", "/me")]) {
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      expect(res.headers.get("vary")).toMatch(/origin/i);
    }
  });

  it("the authorization server's public endpoints answer any origin, never with credentials (browser-based OAuth and MCP clients)", async () => {
    const origin = { origin: "https://inspector.example" };
    for (const path of ["/.well-known/jwks.json", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const res = await call("GET", path, { headers: origin });
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    }
    const pre = await call("OPTIONS", "/oauth2/token", {
      headers: { ...origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    // The API's own routes still answer only CORS_ORIGINS.
    expect((await call("GET", "/me", { headers: origin })).headers.get("access-control-allow-origin")).toBeNull();
    expect((await call("OPTIONS", "/oauth2/requests/x/approve", { headers: origin })).headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers OPTIONS without Origin with 204 too, not a 405 that names OPTIONS as allowed", async () => {
    const res = await call("OPTIONS", "/login");
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("never answers * to a credentialed origin", async () => {
    const res = await call("GET", "/health", { headers: { origin: APP } });
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("vary")).toMatch(/origin/i);
  });
});

describe("cookie mode", () => {
  it("sets the refresh token as an HttpOnly SameSite cookie on the refresh and logout paths, not in JSON", async () => {
    const { res } = await cookieLogin();
    expect(res.status, res.text).toBe(200);
    expect(res.body.refresh_token).toBeUndefined();
    expect(res.body.access_token).toEqual(expect.any(String));
    const cookies = refreshCookies(res);
    expect(cookies.map((c) => /Path=([^;]+)/.exec(c)![1]).sort()).toEqual(COOKIE_PATHS);
    for (const c of cookies) {
      expect(c).toContain("HttpOnly");
      expect(c).toContain("SameSite=Strict");
      expect(c).toMatch(/Max-Age=\d+/);
      expect(c).not.toContain("Secure"); // http://localhost: development
      expect(cookieValue(c)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it("works for registration too", async () => {
    const res = await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD, use_cookie: true }, headers: { origin: APP } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.refresh_token).toBeUndefined();
    expect(refreshCookies(res)).toHaveLength(COOKIE_PATHS.length);
  });

  it("with COOKIE_SAMESITE=None, always marks the cookie Secure (browsers drop it otherwise)", async () => {
    const reg = await registerUser();
    const req = new Request("http://localhost/login", {
      method: "POST",
      headers: { "content-type": "application/json", origin: APP },
      body: JSON.stringify({ username: reg.input.username, password: PASSWORD, use_cookie: true }),
    });
    const res = await worker.fetch(req, { ...env, COOKIE_SAMESITE: "None" });
    expect(res.status).toBe(200);
    for (const c of bothRefreshCookies(res)) {
      expect(c).toMatch(/SameSite=None/i);
      expect(c).toContain("Secure");
    }
  });

  it("refreshes by cookie when the body is empty JSON, as many HTTP clients send it", async () => {
    const { res } = await cookieLogin();
    const token = cookieValue(refreshCookies(res)[0]!);
    const refreshed = await call("POST", "/refresh", {
      headers: { origin: APP, cookie: `refresh_token=${token}`, "content-type": "application/json", "content-length": "0" },
    });
    expect(refreshed.status, refreshed.text).toBe(200);
  });

  it("answers a page load's if_signed_in refresh with 204 when no cookie came, and refreshes as usual when one did", async () => {
    const none = await call("POST", "/refresh", { headers: { origin: APP }, body: { if_signed_in: true } });
    expect(none.status, none.text).toBe(204);
    expect(none.text).toBe("");
    expect(none.headers.get("access-control-allow-origin")).toBe(APP);
    const { res } = await cookieLogin();
    const token = cookieValue(refreshCookies(res)[0]!);
    const live = await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${token}` }, body: { if_signed_in: true } });
    expect(live.status, live.text).toBe(200);
    // A cookie that came but is dead is a real sign-out: 401 as ever. So is a wrong token in the body.
    const dead = { origin: APP, cookie: `refresh_token=${"A".repeat(43)}` };
    expectError(await call("POST", "/refresh", { headers: dead, body: { if_signed_in: true } }), 401, "invalid_token");
    expectError(await call("POST", "/refresh", { body: { refresh_token: "A".repeat(43), if_signed_in: true } }), 401, "invalid_token");
    // Without the flag, no cookie is still 401; a flag that is not a boolean is a 400.
    expectError(await call("POST", "/refresh", { headers: { origin: APP } }), 401, "invalid_token");
    expectError(await call("POST", "/refresh", { headers: { origin: APP }, body: { if_signed_in: "yes" } }), 400, "validation_failed");
  });

  it("marks the cookie Secure everywhere but http://localhost", async () => {
    const { res } = await cookieLogin("https://auth.example.com", "https://auth.example.com");
    for (const c of bothRefreshCookies(res)) expect(c).toContain("Secure");
  });

  it("round-trips: refresh by cookie rotates the cookie and leaves it out of JSON; the old cookie is dead", async () => {
    const { res } = await cookieLogin();
    const first = cookieValue(refreshCookies(res)[0]!);
    const refreshed = await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${first}` } });
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(refreshed.body.refresh_token).toBeUndefined();
    const second = cookieValue(refreshCookies(refreshed)[0]!);
    expect(second).not.toBe(first);
    expect((await call("GET", "/protected", { token: refreshed.body.access_token })).status).toBe(200);
    expectError(await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${first}` } }), 401, "invalid_token");
  });

  it("rejects a cookie refresh from a foreign origin or with no origin (CSRF), and the session survives", async () => {
    const { res } = await cookieLogin();
    const token = cookieValue(refreshCookies(res)[0]!);
    expectError(await call("POST", "/refresh", { headers: { origin: EVIL, cookie: `refresh_token=${token}` } }), 403, "forbidden");
    expectError(await call("POST", "/refresh", { headers: { cookie: `refresh_token=${token}` } }), 403, "forbidden");
    expect((await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${token}` } })).status).toBe(200);
  });

  it("refuses to start cookie mode for a foreign origin, at login and at registration", async () => {
    const { res } = await cookieLogin(EVIL);
    expectError(res, 403, "forbidden");
    expect(refreshCookies(res)).toEqual([]);
    const reg = await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD, use_cookie: true }, headers: { origin: EVIL } });
    expectError(reg, 403, "forbidden");
    expect(refreshCookies(reg)).toEqual([]);
  });

  it("logs out by cookie alone (access token gone) and clears the cookie", async () => {
    const { res } = await cookieLogin();
    const token = cookieValue(refreshCookies(res)[0]!);
    expectError(await call("POST", "/logout", { headers: { origin: EVIL, cookie: `refresh_token=${token}` } }), 403, "forbidden");
    const out = await call("POST", "/logout", { headers: { origin: APP, cookie: `refresh_token=${token}` } });
    expect(out.status, out.text).toBe(200);
    for (const c of bothRefreshCookies(out)) expect(c).toMatch(/Max-Age=0/);
    expectError(await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${token}` } }), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: res.body.access_token }), 401, "invalid_token");
  });

  it("logout everywhere clears the cookie too", async () => {
    const { res } = await cookieLogin();
    const token = cookieValue(refreshCookies(res)[0]!);
    const out = await call("POST", "/logout/all", {
      body: { current_password: PASSWORD },
      token: res.body.access_token,
      headers: { origin: APP, cookie: `refresh_token=${token}` },
    });
    expect(out.status).toBe(200);
    for (const c of bothRefreshCookies(out)) expect(c).toMatch(/Max-Age=0/);
  });

  it("Bearer logout also clears the cookie when the browser sent it", async () => {
    const { res } = await cookieLogin();
    const token = cookieValue(refreshCookies(res)[0]!);
    const out = await call("POST", "/logout", { token: res.body.access_token, headers: { origin: APP, cookie: `refresh_token=${token}` } });
    expect(out.status).toBe(200);
    expect(refreshCookies(out).length).toBe(COOKIE_PATHS.length);
    expectError(await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${token}` } }), 401, "invalid_token");
  });

  it("clears a dead or rotated cookie on a cookie-only logout and answers 200 (script cannot delete it)", async () => {
    const { res } = await cookieLogin();
    const first = cookieValue(refreshCookies(res)[0]!);
    const rotated = await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${first}` } });
    expect(rotated.status).toBe(200);
    for (const dead of [first, "A".repeat(43), "junk"]) {
      const out = await call("POST", "/logout", { headers: { origin: APP, cookie: `refresh_token=${dead}` } });
      expect(out.status, out.text).toBe(200);
      expect(refreshCookies(out)).toHaveLength(COOKIE_PATHS.length);
      for (const c of bothRefreshCookies(out)) expect(c).toMatch(/Max-Age=0/);
    }
  });

  it("deletes the cookie with the attributes that set it (SameSite=None needs Secure, or the browser ignores it)", async () => {
    const reg = await registerUser();
    const send = (path: string, body?: unknown, cookie?: string) =>
      worker.fetch(
        new Request(`http://localhost${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", origin: APP, ...(cookie ? { cookie } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
        }),
        { ...env, COOKIE_SAMESITE: "None" },
      );
    const set = bothRefreshCookies(await send("/login", { username: reg.input.username, password: PASSWORD, use_cookie: true }));
    const cleared = bothRefreshCookies(await send("/logout", undefined, `refresh_token=${cookieValue(set[0]!)}`));
    const attrs = (c: string) =>
      c
        .split(";")
        .slice(1)
        .map((a) => a.trim().split("=")[0]!.toLowerCase())
        .filter((a) => a !== "max-age")
        .sort();
    expect(cleared.map(attrs)).toEqual(set.map(attrs));
    for (const c of cleared) {
      expect(c).toMatch(/SameSite=None/i);
      expect(c).toContain("Secure");
      expect(c).toMatch(/Max-Age=0/);
    }
  });

  it("refuses a request carrying two refresh_token cookies (one tossed in from a sibling subdomain)", async () => {
    const { res } = await cookieLogin();
    const mine = cookieValue(refreshCookies(res)[0]!);
    const attacker = await cookieLogin();
    const theirs = cookieValue(refreshCookies(attacker.res)[0]!);
    const cookie = `refresh_token=${theirs}; refresh_token=${mine}`;
    expectError(await call("POST", "/refresh", { headers: { origin: APP, cookie } }), 400, "invalid_request");
    expectError(await call("POST", "/logout", { headers: { origin: APP, cookie } }), 400, "invalid_request");
    // Neither session was touched.
    expect((await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${mine}` } })).status).toBe(200);
    expect((await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${theirs}` } })).status).toBe(200);
  });

  it("with two refresh_token cookies, a Bearer logout still ends the token's session (and neither cookie's)", async () => {
    const { res } = await cookieLogin();
    const mine = cookieValue(refreshCookies(res)[0]!);
    const attacker = await cookieLogin();
    const theirs = cookieValue(refreshCookies(attacker.res)[0]!);
    const out = await call("POST", "/logout", {
      token: res.body.access_token,
      headers: { origin: APP, cookie: `refresh_token=${theirs}; refresh_token=${mine}` },
    });
    expect(out.status, out.text).toBe(200);
    for (const c of bothRefreshCookies(out)) expect(c).toMatch(/Max-Age=0/);
    expectError(await call("GET", "/protected", { token: res.body.access_token }), 401, "invalid_token");
    expectError(await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${mine}` } }), 401, "invalid_token");
    // Which cookie was whose cannot be told: the other session is left alone.
    expect((await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${theirs}` } })).status).toBe(200);
  });

  it("logs out by cookie when the Bearer token sent with it has expired (an SPA after a while away)", async () => {
    const { reg, res } = await cookieLogin();
    const token = cookieValue(refreshCookies(res)[0]!);
    const claims = decodeJwtPart(res.body.access_token, 1);
    const expired = await forgeToken({ claims: { sub: reg.user.id, sid: claims.sid, iat: nowSeconds() - 1000, exp: nowSeconds() - 10 } });
    const out = await call("POST", "/logout", { token: expired, headers: { origin: APP, cookie: `refresh_token=${token}` } });
    expect(out.status, out.text).toBe(200);
    for (const c of bothRefreshCookies(out)) expect(c).toMatch(/Max-Age=0/);
    expectError(await call("POST", "/refresh", { headers: { origin: APP, cookie: `refresh_token=${token}` } }), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: res.body.access_token }), 401, "invalid_token");
  });
});
