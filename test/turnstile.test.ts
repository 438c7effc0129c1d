import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, expectError, mailbox, PASSWORD, uniqueName } from "./helpers";

/**
 * Cloudflare Turnstile in front of sign-up and forgot-password (docs/security.md), checked against
 * the siteverify stand-in of scripts/stand-ins.mjs: on only while TURNSTILE_SECRET is set.
 */

afterEach(() => vi.restoreAllMocks());

const STAND_INS = env.TEST_STAND_INS;
const SECRET = "turnstile-test-secret";
const on = (mode?: string) => ({ TURNSTILE_SECRET: SECRET, TURNSTILE_VERIFY_URL: `${STAND_INS}/siteverify${mode ? `/${mode}` : ""}` }) as Partial<Env>;
const header = (token: string) => ({ "cf-turnstile-response": token });
const signUp = (headers: Record<string, string>, bindings?: Partial<Env>) =>
  call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD }, headers, bindings });
const forgot = (headers: Record<string, string>, bindings?: Partial<Env>) =>
  mailbox().send("POST", "/password/forgot", { body: { email: `${uniqueName("ts")}@example.com` }, headers, bindings });

describe.each([
  ["POST /register", signUp, 201],
  ["POST /password/forgot", forgot, 202],
] as const)("Turnstile on %s", (_route, send, ok) => {
  it("without TURNSTILE_SECRET, asks for nothing", async () => {
    expect((await send({})).status).toBe(ok);
  });

  it("refuses a request without the token: 400 turnstile_required", async () => {
    expectError(await send({}, on()), 400, "turnstile_required");
  });

  it("refuses a bad token and a reused one: 403 turnstile_failed", async () => {
    expectError(await send(header("not-a-real-token"), on()), 403, "turnstile_failed");
    const once = `once-${crypto.randomUUID()}`;
    expect((await send(header(once), on())).status).toBe(ok);
    expectError(await send(header(once), on()), 403, "turnstile_failed");
  });

  it("refuses a token made for another action", async () => {
    expectError(await send(header("action-guest"), on()), 403, "turnstile_failed");
  });

  it("lets a good token through, sending the secret and the token to siteverify", async () => {
    const token = `once-${crypto.randomUUID()}`;
    expect((await send(header(token), on())).status).toBe(ok);
    expect((await send(header("XXXX.DUMMY.TOKEN.XXXX"), on())).status).toBe(ok);
    const log = await (await fetch(`${STAND_INS}/siteverify-log`)).json<{ secret: string; response: string }[]>();
    expect(log.find((r) => r.response === token)).toMatchObject({ secret: SECRET, response: token });
  });

  it("answers 503 turnstile_unavailable with Retry-After when siteverify is down (fails closed)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await send(header("pass"), on("down"));
    expectError(res, 503, "turnstile_unavailable");
    expect(res.headers.get("retry-after")).toBe("5");
  });
});

describe("Turnstile and the request's order", () => {
  it("checks the token before the body: a bad token costs no account, a good one with the right action signs up", async () => {
    const username = uniqueName();
    const body = { username, password: PASSWORD };
    expectError(await call("POST", "/register", { body, headers: header("nope"), bindings: on() }), 403, "turnstile_failed");
    expect(await env.DB.prepare("SELECT id FROM users WHERE username = ?").bind(username).first()).toBeNull();
    expect((await call("POST", "/register", { body, headers: header("action-sign_up"), bindings: on() })).status).toBe(201);
  });

  it("answers 503 turnstile_unavailable when siteverify never answers (the 3 s timeout), creating nothing", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const username = uniqueName();
    const started = Date.now();
    const res = await call("POST", "/register", { body: { username, password: PASSWORD }, headers: header("pass"), bindings: on("deaf") });
    expectError(res, 503, "turnstile_unavailable");
    expect(Date.now() - started).toBeLessThan(4_500);
    expect(await env.DB.prepare("SELECT id FROM users WHERE username = ?").bind(username).first()).toBeNull();
  });

  it("lets the browser send the header cross-origin (CORS preflight)", async () => {
    const res = await call("OPTIONS", "/register", {
      headers: {
        origin: "http://localhost:5173",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,cf-turnstile-response",
      },
    });
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("cf-turnstile-response");
  });
});

describe("GET /turnstile", () => {
  it("publishes the site key only while Turnstile is on", async () => {
    expect((await call("GET", "/turnstile", { bindings: { TURNSTILE_SITE_KEY: "1x00000000000000000000AA" } as Partial<Env> })).body).toEqual({
      site_key: null,
    });
    const res = await call("GET", "/turnstile", { bindings: { ...on(), TURNSTILE_SITE_KEY: "1x00000000000000000000AA" } as Partial<Env> });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ site_key: "1x00000000000000000000AA" });
  });
});
