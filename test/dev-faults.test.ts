import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { checkVars } from "../src/config";
import { adminToken, type CallOptions, call, expectError, PASSWORD, registerUser, uniqueName } from "./helpers";

/**
 * DEV_FAULTS (src/dev-faults.ts): local dev's injected faults, what the soak switches mid-run. Every
 * call here goes through the worker imported by the test (bindings given), so they share the faults.
 */

const ON = { DEV_FAULTS: "on" } as Partial<Env>;
const on = (opts: CallOptions = {}): CallOptions => ({ ...opts, bindings: { ...ON, ...opts.bindings } });
const arm = (faults: { d1_overloaded_ms?: number; kv_write_failures?: number }) => call("POST", "/dev/faults", on({ body: faults }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  expect((await arm({ d1_overloaded_ms: 0, kv_write_failures: 0 })).status).toBe(200);
});

function expectRetryLater(res: Awaited<ReturnType<typeof call>>) {
  expectError(res, 503, "service_unavailable");
  expect(res.headers.get("retry-after")).toBe("1");
}

describe("DEV_FAULTS off (wrangler.toml's value)", () => {
  it("POST /dev/faults is a 404, and armed faults touch nothing", async () => {
    expect(env.DEV_FAULTS).toBe("off");
    expectError(await call("POST", "/dev/faults", { body: { d1_overloaded_ms: 10_000 }, bindings: { DEV_FAULTS: "off" } as Partial<Env> }), 404, "not_found");
    // Armed by an isolate where it is on, the faults do not reach a request where it is off: nothing is wrapped.
    expect((await arm({ d1_overloaded_ms: 10_000, kv_write_failures: 5 })).body).toMatchObject({ kv_write_failures: 5 });
    const reg = await registerUser();
    expect((await call("POST", "/logout", { token: reg.access_token, bindings: { DEV_FAULTS: "off" } as Partial<Env> })).status).toBe(200);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
  });
});

describe("DEV_FAULTS on is refused outside local dev", () => {
  it("the switch answers only on a loopback host, whatever ISSUER says", async () => {
    const res = await call("POST", "/dev/faults", on({ body: { kv_write_failures: 3 }, base: "http://auth.example.com" }));
    expectError(res, 404, "not_found");
    expect((await arm({})).body).toMatchObject({ kv_write_failures: 0 });
  });

  it.each(["https://auth.example.com", "http://auth.example.com", "https://localhost:8787", "http://10.0.0.1:8787"])(
    "ISSUER %s: 500, config_invalid",
    async (issuer) => {
      const res = await call("GET", "/health", { bindings: { ...ON, ISSUER: issuer } });
      expectError(res, 500, "internal_error");
      expectError(await call("POST", "/dev/faults", { body: {}, bindings: { ...ON, ISSUER: issuer } }), 500, "internal_error");
    },
  );

  it("the deploy check refuses it, and accepts it on a loopback http issuer", () => {
    expect(checkVars({ ...env, ISSUER: "https://auth.example.com", DEV_FAULTS: "on" })).toContain(
      'DEV_FAULTS: must be "off" unless ISSUER is an http URL on a loopback host (local dev only)',
    );
    expect(checkVars({ ...env, ISSUER: "https://auth.example.com", DEV_FAULTS: "off" })).toEqual([]);
    for (const issuer of ["http://localhost:8787", "http://127.0.0.1:9000", "http://[::1]:8787"])
      expect(checkVars({ ...env, ISSUER: issuer, DEV_FAULTS: "on" })).toEqual([]);
  });
});

describe("DEV_FAULTS on", () => {
  it("D1 overloaded for a while: 503 with Retry-After, nothing half-written, and the retry after the window completes", async () => {
    const reg = await registerUser();
    const user = { username: uniqueName(), password: PASSWORD };
    expect((await arm({ d1_overloaded_ms: 1500 })).body.d1_overloaded_ms).toBeGreaterThan(1000);
    expectRetryLater(await call("POST", "/register", on({ body: user })));
    expectRetryLater(await call("POST", "/login", on({ body: { username: reg.input.username, password: PASSWORD } })));
    expectRetryLater(await call("POST", "/refresh", on({ body: { refresh_token: reg.refresh_token } })));
    // The sessions list reads through D1's Sessions API (a replica): wrapped too.
    expectRetryLater(await call("GET", "/sessions", on({ token: reg.access_token })));
    await sleep(1600);
    // The sign-up never half-happened: the same name is free, and the refresh token still works.
    expect((await call("POST", "/register", on({ body: user }))).status).toBe(201);
    expect((await call("POST", "/login", on({ body: { username: reg.input.username, password: PASSWORD } }))).status).toBe(200);
    expect((await call("POST", "/refresh", on({ body: { refresh_token: reg.refresh_token } }))).status).toBe(200);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE username = ?").bind(user.username).first<{ n: number }>();
    expect(rows?.n).toBe(1);
  });

  it("a KV write fails once: POST /logout answers 503 with Retry-After, and the retry completes the revocation", async () => {
    const reg = await registerUser();
    expect((await arm({ kv_write_failures: 1 })).body).toEqual({ d1_overloaded_ms: 0, kv_write_failures: 1 });
    expectRetryLater(await call("POST", "/logout", on({ token: reg.access_token })));
    expect((await arm({})).body.kv_write_failures).toBe(0);
    // The session is over in D1 already; its access token passes KV until the retry writes the entry.
    expectError(await call("POST", "/refresh", on({ body: { refresh_token: reg.refresh_token } })), 401, "invalid_token");
    expect((await call("POST", "/logout", on({ token: reg.access_token }))).status).toBe(200);
    expectError(await call("GET", "/protected", on({ token: reg.access_token })), 401, "invalid_token");
  });
});

/**
 * Every KV writer that the other suites do not make fail (test/resilience.test.ts and the feature
 * suites cover logout, logout-all, password change and reset, session revocation, reuse detection,
 * the session cap, the step-up budget, apps' grants, the organization switch, the key ring): one
 * failed write is a 503 with Retry-After, and the same request sent again completes.
 */
describe("one KV write fails: 503 with Retry-After, and the retry completes", () => {
  const failOnce = async () => expect((await arm({ kv_write_failures: 1 })).status).toBe(200);
  async function retried(send: () => ReturnType<typeof call>) {
    await failOnce();
    expectRetryLater(await send());
    const retry = await send();
    expect(retry.status, retry.text).toBeLessThan(300);
    return retry;
  }

  it("DELETE /me", async () => {
    const reg = await registerUser();
    await retried(() => call("DELETE", "/me", on({ token: reg.access_token, body: { current_password: PASSWORD } })));
    expectError(await call("GET", "/protected", on({ token: reg.access_token })), 401, "invalid_token");
  });

  it("PATCH /admin/users/{id} (disable)", async () => {
    const admin = await adminToken();
    const reg = await registerUser();
    await retried(() => call("PATCH", `/admin/users/${reg.user.id}`, on({ token: admin, body: { disabled: true } })));
    expectError(await call("GET", "/protected", on({ token: reg.access_token })), 401, "invalid_token");
  });

  it("POST /admin/users/{id}/sessions/revoke", async () => {
    const admin = await adminToken();
    const reg = await registerUser();
    await retried(() => call("POST", `/admin/users/${reg.user.id}/sessions/revoke`, on({ token: admin })));
    expectError(await call("GET", "/protected", on({ token: reg.access_token })), 401, "invalid_token");
  });
});
