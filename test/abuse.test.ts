import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PASSWORD, call, expectError, randomIp, refreshWith, registerUser, uniqueName } from "./helpers";

/** Limits from wrangler.toml [[ratelimits]]: login 20/IP, 10/username, register 10/IP, refresh 60/IP per minute. */
const loginAs = (username: string, password: string, ip = randomIp()) =>
  call("POST", "/login", { body: { username, password }, headers: { "cf-connecting-ip": ip } });

function expectRateLimited(res: Awaited<ReturnType<typeof call>>, retryAfterMax = 60) {
  expectError(res, 429, "rate_limited");
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(retryAfterMax);
}

const userRow = (id: string) =>
  env.DB.prepare("SELECT failed_logins, locked_until FROM users WHERE id = ?").bind(id).first<{ failed_logins: number; locked_until: number | null }>();

describe("rate limits at the edge", () => {
  it("limits login attempts per client IP (any usernames)", async () => {
    const ip = randomIp();
    const statuses = [];
    for (let i = 0; i < 21; i++) statuses.push((await loginAs(uniqueName("nobody"), "wrong password 1", ip)).status);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expectRateLimited(await loginAs(uniqueName("nobody"), "wrong password 1", ip));
    // Another client is not affected.
    expect((await loginAs(uniqueName("nobody"), "wrong password 1")).status).toBe(401);
  });

  it("limits login attempts per username, from whatever IPs, for unknown usernames too", async () => {
    const ghost = uniqueName("ghost");
    for (let i = 0; i < 10; i++) expect((await loginAs(ghost, "wrong password 1")).status).toBe(401);
    expectRateLimited(await loginAs(ghost.toUpperCase(), "wrong password 1"));
  });

  it("limits registrations per IP", async () => {
    const ip = randomIp();
    for (let i = 0; i < 10; i++) {
      const res = await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD }, headers: { "cf-connecting-ip": ip } });
      expect(res.status).toBe(201);
    }
    expectRateLimited(await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD }, headers: { "cf-connecting-ip": ip } }));
  });

  it("limits refreshes per IP", async () => {
    const ip = randomIp();
    for (let i = 0; i < 60; i++) {
      const res = await call("POST", "/refresh", { body: { refresh_token: "A".repeat(43) }, headers: { "cf-connecting-ip": ip } });
      expect(res.status).toBe(401);
    }
    expectRateLimited(await call("POST", "/refresh", { body: { refresh_token: "A".repeat(43) }, headers: { "cf-connecting-ip": ip } }));
  });

  it("records a rate_limited audit event", async () => {
    const ip = randomIp();
    for (let i = 0; i < 21; i++) await loginAs(uniqueName("flood"), "wrong password 1", ip);
    const row = await env.DB.prepare("SELECT event, ip, detail FROM audit_events WHERE event = 'rate_limited' AND ip = ?").bind(ip).first<{ detail: string }>();
    expect(JSON.parse(row!.detail)).toEqual({ limiter: "LOGIN_IP_LIMITER" });
  });
});

describe("account lock after repeated failed logins", () => {
  it("locks after 5 failures: every login, the right password too, is 429 with Retry-After; sessions stay alive", async () => {
    const reg = await registerUser();
    for (let i = 1; i <= 5; i++) expectError(await loginAs(reg.input.username, "wrong password 1"), 401, "invalid_credentials");
    const locked = await loginAs(reg.input.username, PASSWORD);
    expectRateLimited(locked, 30);
    expect(locked.body.error).toBe("rate_limited");
    // The lock stops guessing; it does not log the user out.
    expect((await call("GET", "/protected", { token: reg.access_token })).status).toBe(200);
    expect((await refreshWith(reg.refresh_token)).status).toBe(200);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'account_locked' AND user_id = ?").bind(reg.user.id).first<{ n: number }>())!.n).toBe(1);
  });

  it("grows the lock exponentially, capped, and never locks for good", async () => {
    const reg = await registerUser();
    for (let i = 0; i < 5; i++) await loginAs(reg.input.username, "wrong password 1");
    const first = (await userRow(reg.user.id))!;
    expect(first.locked_until! - Date.now()).toBeGreaterThan(25_000);
    expect(first.locked_until! - Date.now()).toBeLessThanOrEqual(30_000);

    // The lock runs out; one more failure locks for twice as long.
    await env.DB.prepare("UPDATE users SET locked_until = ? WHERE id = ?").bind(Date.now() - 1, reg.user.id).run();
    await loginAs(reg.input.username, "wrong password 1");
    const second = (await userRow(reg.user.id))!;
    expect(second.failed_logins).toBe(6);
    expect(second.locked_until! - Date.now()).toBeGreaterThan(55_000);
    expect(second.locked_until! - Date.now()).toBeLessThanOrEqual(60_000);

    // However many failures, no lock exceeds LOGIN_LOCK_MAX (900 s).
    await env.DB.prepare("UPDATE users SET failed_logins = 40, locked_until = ? WHERE id = ?").bind(Date.now() - 1, reg.user.id).run();
    await loginAs(reg.input.username, "wrong password 1");
    expect((await userRow(reg.user.id))!.locked_until! - Date.now()).toBeLessThanOrEqual(900_000);

    // Once it runs out, the right password gets in and resets the count.
    await env.DB.prepare("UPDATE users SET locked_until = ? WHERE id = ?").bind(Date.now() - 1, reg.user.id).run();
    expect((await loginAs(reg.input.username, PASSWORD)).status).toBe(200);
    expect(await userRow(reg.user.id)).toEqual({ failed_logins: 0, locked_until: null });
  });

  it("a successful login resets the count, so failures must be in a row", async () => {
    const reg = await registerUser();
    for (let i = 0; i < 4; i++) await loginAs(reg.input.username, "wrong password 1");
    expect((await loginAs(reg.input.username, PASSWORD)).status).toBe(200);
    for (let i = 0; i < 4; i++) await loginAs(reg.input.username, "wrong password 1");
    expect((await loginAs(reg.input.username, PASSWORD)).status).toBe(200);
  });

  it("counts concurrent failures without losing any", async () => {
    const reg = await registerUser();
    await Promise.all(Array.from({ length: 4 }, () => loginAs(reg.input.username, "wrong password 1")));
    expect((await userRow(reg.user.id))!.failed_logins).toBe(4);
  });

  it("keeps the 401 for an unknown user byte-identical to a wrong password, lock or not", async () => {
    const reg = await registerUser();
    const wrong = await loginAs(reg.input.username, "wrong password 1");
    const unknown = await loginAs(uniqueName("ghost"), "wrong password 1");
    expect(unknown.text).toBe(wrong.text);
    expect(unknown.status).toBe(401);
  });
});
