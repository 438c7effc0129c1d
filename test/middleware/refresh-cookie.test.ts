import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/env";
import { onError } from "../../src/errors";
import {
  assertAllowedOrigin,
  clearRefreshCookie,
  readRefreshCookie,
  SIGN_IN_PATHS,
  sentRefreshCookie,
  setRefreshCookie,
} from "../../src/middleware/refresh-cookie";

// One cookie per path that uses it: /refresh rotates it, /logout ends its session, and a sign-in ends the session it replaces.
const PATHS = ["/refresh", "/logout", ...SIGN_IN_PATHS];

const HOUR = 3600_000;
const app = new Hono<AppEnv>();
app.post("/set", (c) => {
  setRefreshCookie(c, "the-token", new Date(Date.now() + HOUR));
  return c.json({});
});
app.post("/clear", (c) => {
  clearRefreshCookie(c);
  return c.json({});
});
app.post("/read", (c) => c.json({ sent: sentRefreshCookie(c), value: readRefreshCookie(c) ?? null }));
app.post("/guard", (c) => {
  assertAllowedOrigin(c);
  return c.json({ ok: true });
});
app.onError(onError);

/** POSTs to the tiny app at `base` (the API's own URL), with the tests' config or some of it replaced. */
const post = (path: string, headers: Record<string, string> = {}, base = "http://localhost", vars: Partial<Env> = {}) =>
  app.request(`${base}${path}`, { method: "POST", headers }, { ...env, ...vars });

const cookiesOf = (res: Response) => res.headers.getSetCookie().filter((c) => c.startsWith("refresh_token="));
const attributes = (cookie: string) =>
  Object.fromEntries(
    cookie
      .split(";")
      .slice(1)
      .map((a) => a.trim().split("="))
      .map(([k, v]) => [k!.toLowerCase(), v ?? true]),
  );

describe("setting and clearing the cookie", () => {
  it("sets one HttpOnly cookie per path that uses it (/refresh, /logout, the sign-ins), SameSite from the config, for the token's remaining life", async () => {
    const cookies = cookiesOf(await post("/set"));
    expect(cookies.map((c) => attributes(c).path).sort()).toEqual([...PATHS].sort());
    for (const c of cookies) {
      expect(c.split(";")[0]).toBe("refresh_token=the-token");
      const a = attributes(c);
      expect(a).toMatchObject({ httponly: true, samesite: "Strict" });
      expect(Number(a["max-age"])).toBeGreaterThanOrEqual(3598);
      expect(Number(a["max-age"])).toBeLessThanOrEqual(3600);
      expect(a.secure).toBeUndefined(); // http://localhost: development
    }
  });

  it("is Secure everywhere but http on localhost, and always with SameSite=None", async () => {
    for (const base of ["https://auth.example.com", "http://auth.example.com", "https://localhost"]) {
      const cookies = cookiesOf(await post("/set", {}, base));
      expect(cookies, base).toHaveLength(PATHS.length);
      for (const c of cookies) expect(attributes(c).secure, base).toBe(true);
    }
    for (const base of ["http://127.0.0.1", "http://[::1]"]) {
      const cookies = cookiesOf(await post("/set", {}, base));
      expect(cookies, base).toHaveLength(PATHS.length);
      for (const c of cookies) expect(attributes(c).secure, base).toBeUndefined();
    }
    const none = cookiesOf(await post("/set", {}, "http://localhost", { COOKIE_SAMESITE: "None" }));
    expect(none).toHaveLength(PATHS.length);
    for (const c of none) expect(attributes(c)).toMatchObject({ samesite: "None", secure: true });
  });

  it("clears with the very attributes that set it, empty and expired (a browser ignores a deletion that differs)", async () => {
    for (const vars of [{}, { COOKIE_SAMESITE: "None" }]) {
      const set = cookiesOf(await post("/set", {}, "https://auth.example.com", vars));
      const cleared = cookiesOf(await post("/clear", {}, "https://auth.example.com", vars));
      const without = (c: string) => ({ ...attributes(c), "max-age": undefined });
      expect(set).toHaveLength(PATHS.length);
      expect(cleared).toHaveLength(PATHS.length);
      expect(cleared.map(without)).toEqual(set.map(without));
      for (const c of cleared) {
        expect(c.split(";")[0]).toBe("refresh_token=");
        expect(attributes(c)["max-age"]).toBe("0");
      }
    }
  });
});

describe("reading the cookie", () => {
  const read = async (cookie?: string) => {
    const res = await post("/read", cookie === undefined ? {} : { cookie });
    return { status: res.status, body: await res.json<Record<string, unknown>>() };
  };

  it("reads its value among other cookies; none, an empty one or a lookalike name is no token", async () => {
    expect(await read("theme=dark; refresh_token=abc; lang=en")).toEqual({ status: 200, body: { sent: true, value: "abc" } });
    expect(await read()).toEqual({ status: 200, body: { sent: false, value: null } });
    expect(await read("refresh_token=")).toEqual({ status: 200, body: { sent: true, value: null } });
    expect(await read("xrefresh_token=a; refresh_tokens=b")).toEqual({ status: 200, body: { sent: false, value: null } });
  });

  it("refuses two refresh_token cookies (one tossed in from a sibling subdomain) with 400 invalid_request, even when one is empty", async () => {
    for (const cookie of ["refresh_token=theirs; refresh_token=mine", "refresh_token=mine;refresh_token=", " refresh_token=a ; other=1; refresh_token =b"]) {
      const { status, body } = await read(cookie);
      expect(status, cookie).toBe(400);
      expect(body).toMatchObject({ error: "invalid_request", message: expect.stringContaining("More than one refresh_token cookie") });
    }
  });
});

describe("assertAllowedOrigin (CSRF)", () => {
  it("lets a cookie request from this API's own origin or one of CORS_ORIGINS through", async () => {
    expect((await post("/guard", { origin: "http://localhost" })).status).toBe(200);
    expect((await post("/guard", { origin: "https://auth.example.com" }, "https://auth.example.com")).status).toBe(200);
    expect((await post("/guard", { origin: "http://localhost:5173" })).status).toBe(200); // CORS_ORIGINS in the tests
  });

  it("refuses one without Origin, from a foreign or lookalike origin, or from an opaque one, with 403 forbidden", async () => {
    for (const origin of [undefined, "https://evil.example", "http://localhost:5173.evil.example", "http://localhost:5174", "null"]) {
      const res = await post("/guard", origin === undefined ? {} : { origin });
      expect(res.status, origin).toBe(403);
      expect(await res.json()).toMatchObject({ error: "forbidden" });
    }
  });
});
