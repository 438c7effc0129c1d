import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ipKey } from "../src/middleware/client-ip";
import { adminToken, call, expectError, inOneLimiterWindow, PASSWORD, randomIp, refreshWith, registerUser, uniqueName } from "./helpers";

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

afterEach(() => vi.restoreAllMocks());

describe("rate limits at the edge", () => {
  // Each test fills a budget within one limiter window, wherever in a minute it starts.
  beforeEach(() => inOneLimiterWindow(), 20_000);
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

  it("records a rate_limited audit row once per key and period, however many requests are refused", async () => {
    const ip = randomIp();
    for (let i = 0; i < 30; i++) await loginAs(uniqueName("flood"), "wrong password 1", ip);
    const rows = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'rate_limited' AND ip = ?").bind(ip).all<{ detail: string }>();
    expect(rows.results.map((r) => JSON.parse(r.detail))).toEqual([{ limiter: "LOGIN_IP_LIMITER", key: `ip:${ip}` }]);
  });

  it("counts IPv6 clients per /64, IPv4 per address", async () => {
    expect(ipKey("2001:db8:1:2:aaaa::1")).toBe("ip6:2001:db8:1:2::/64");
    expect(ipKey("2001:0db8:0001:0002:ffff:ffff:ffff:ffff")).toBe("ip6:2001:db8:1:2::/64");
    expect(ipKey("2001:db8::1")).toBe("ip6:2001:db8:0:0::/64");
    expect(ipKey("::ffff:192.0.2.7")).toBe("ip:192.0.2.7");
    expect(ipKey("192.0.2.7")).toBe("ip:192.0.2.7");
    // Over HTTP: 21 addresses from one /64 share one login budget.
    const prefix = `2001:db8:${Math.floor(Math.random() * 65535).toString(16)}:7`;
    for (let i = 0; i < 20; i++) expect((await loginAs(uniqueName("v6"), "wrong password 1", `${prefix}::${i + 1}`)).status).toBe(401);
    expectRateLimited(await loginAs(uniqueName("v6"), "wrong password 1", `${prefix}:1:2:3:4`));
  });

  it("gives username and email one per-account budget", async () => {
    const reg = await registerUser({ email: `${uniqueName("both")}@example.com` });
    for (let i = 0; i < 10; i++) expect((await loginAs(i % 2 ? reg.input.username : reg.input.email!, PASSWORD)).status).toBe(200);
    const res = await loginAs(reg.input.email!.toUpperCase(), PASSWORD);
    expectRateLimited(res);
    expect(res.headers.get("retry-after")).toBe("60"); // the edge limiter, not the account lock
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
    expect(
      (await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'account_locked' AND user_id = ?").bind(reg.user.id).first<{ n: number }>())!
        .n,
    ).toBe(1);
  });

  it("grows the lock exponentially, capped, and never locks for good", async () => {
    const reg = await registerUser();
    for (let i = 0; i < 5; i++) await loginAs(reg.input.username, "wrong password 1");
    const first = (await userRow(reg.user.id))!;
    expect(first.locked_until! - Date.now()).toBeGreaterThan(25_000);
    expect(first.locked_until! - Date.now()).toBeLessThanOrEqual(30_000);

    // The lock runs out; one more failure locks for twice as long.
    await env.DB.prepare("UPDATE users SET locked_until = ? WHERE id = ?")
      .bind(Date.now() - 1, reg.user.id)
      .run();
    await loginAs(reg.input.username, "wrong password 1");
    const second = (await userRow(reg.user.id))!;
    expect(second.failed_logins).toBe(6);
    expect(second.locked_until! - Date.now()).toBeGreaterThan(55_000);
    expect(second.locked_until! - Date.now()).toBeLessThanOrEqual(60_000);

    // However many failures, no lock exceeds LOGIN_LOCK_MAX (900 s).
    await env.DB.prepare("UPDATE users SET failed_logins = 40, locked_until = ? WHERE id = ?")
      .bind(Date.now() - 1, reg.user.id)
      .run();
    await loginAs(reg.input.username, "wrong password 1");
    expect((await userRow(reg.user.id))!.locked_until! - Date.now()).toBeLessThanOrEqual(900_000);

    // Once it runs out, the right password gets in and resets the count.
    await env.DB.prepare("UPDATE users SET locked_until = ? WHERE id = ?")
      .bind(Date.now() - 1, reg.user.id)
      .run();
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

  it("lets no more guesses through than the threshold, however many arrive at once", async () => {
    const reg = await registerUser();
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    const results = await Promise.all(Array.from({ length: 9 }, () => loginAs(reg.input.username, "wrong password 1")));
    expect(results.filter((r) => r.status === 401)).toHaveLength(5);
    expect(results.filter((r) => r.status === 429)).toHaveLength(4);
    expect(derive).toHaveBeenCalledTimes(5); // the refused ones spent no hash
  });

  it("starts the count again when the previous failure is over a day old", async () => {
    const reg = await registerUser();
    for (let i = 0; i < 4; i++) await loginAs(reg.input.username, "wrong password 1");
    await env.DB.prepare("UPDATE users SET last_failed_login_at = ? WHERE id = ?")
      .bind(Date.now() - 25 * 3600_000, reg.user.id)
      .run();
    await loginAs(reg.input.username, "wrong password 1");
    expect(await userRow(reg.user.id)).toEqual({ failed_logins: 1, locked_until: null });
  });

  it("audits the first login refused by each lock, with the account, and only the first", async () => {
    const reg = await registerUser();
    for (let i = 0; i < 5; i++) await loginAs(reg.input.username, "wrong password 1");
    for (let i = 0; i < 2; i++) expectRateLimited(await loginAs(reg.input.username, PASSWORD), 30);
    const res = await call("GET", `/admin/audit?user_id=${reg.user.id}&limit=100`, { token: await adminToken() });
    expect(res.body.events[0]).toMatchObject({ event: "rate_limited", detail: { reason: "account_locked" } });
    expect(res.body.events.filter((e: { event: string }) => e.event === "rate_limited")).toHaveLength(1);
    // The next lock gets its own row.
    await env.DB.prepare("UPDATE users SET locked_until = ? WHERE id = ?")
      .bind(Date.now() - 1, reg.user.id)
      .run();
    expectError(await loginAs(reg.input.username, "wrong password 1"), 401, "invalid_credentials");
    expectRateLimited(await loginAs(reg.input.username, PASSWORD), 60);
    const again = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'rate_limited' AND user_id = ?")
      .bind(reg.user.id)
      .first<{ n: number }>();
    expect(again!.n).toBe(2);
  });

  it("never locks an account for a burst of correct logins: at most a 1 s 429 while too many are in flight", async () => {
    const reg = await registerUser();
    // 9 at once: more than the lock threshold (5), within the per-account edge limit (10 a minute).
    const results = await Promise.all(Array.from({ length: 9 }, () => loginAs(reg.input.username, PASSWORD)));
    for (const r of results) {
      if (r.status === 200) continue;
      expectError(r, 429, "rate_limited");
      expect(r.headers.get("retry-after")).toBe("1");
      expect(r.body.message).toMatch(/in progress/);
    }
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(5);
    expect(await userRow(reg.user.id)).toEqual({ failed_logins: 0, locked_until: null });
    expect((await loginAs(reg.input.username, PASSWORD)).status).toBe(200);
  });

  it("still lets no more wrong guesses through than the threshold when correct logins are in flight too", async () => {
    const reg = await registerUser();
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    const wrong = Array.from({ length: 8 }, () => loginAs(reg.input.username, "wrong password 1"));
    const right = Array.from({ length: 4 }, () => loginAs(reg.input.username, PASSWORD));
    const results = await Promise.all([...wrong, ...right]);
    expect(derive.mock.calls.length).toBeLessThanOrEqual(5 + 4); // hashes checked; correct logins may rehash nothing
    expect(results.slice(0, 8).filter((r) => r.status === 401).length).toBeLessThanOrEqual(5);
  });

  it("forgets a check in flight whose worker died, 10 s after it started, each on its own", async () => {
    const reg = await registerUser();
    // As if five checks had started and their workers died before finishing: one of them long ago.
    const started = [Date.now() - 11_000, Date.now(), Date.now(), Date.now(), Date.now()];
    for (const t of started)
      await env.DB.prepare("INSERT INTO password_checks (id, subject, started_at) VALUES (?, ?, ?)").bind(crypto.randomUUID(), `user:${reg.user.id}`, t).run();
    // Four still count: one more check fits under the threshold of five.
    expect((await loginAs(reg.input.username, PASSWORD)).status).toBe(200);
    await env.DB.prepare("INSERT INTO password_checks (id, subject, started_at) VALUES (?, ?, ?)")
      .bind(crypto.randomUUID(), `user:${reg.user.id}`, Date.now())
      .run();
    expectRateLimited(await loginAs(reg.input.username, PASSWORD), 1);
    // New checks do not keep old ones alive: once they are 10 s old, the account is free again.
    await env.DB.prepare("UPDATE password_checks SET started_at = ? WHERE subject = ?")
      .bind(Date.now() - 10_001, `user:${reg.user.id}`)
      .run();
    expect((await loginAs(reg.input.username, PASSWORD)).status).toBe(200);
    expect(await userRow(reg.user.id)).toEqual({ failed_logins: 0, locked_until: null });
  });

  it("keeps the 401 for an unknown user byte-identical to a wrong password, lock or not", async () => {
    const reg = await registerUser();
    const wrong = await loginAs(reg.input.username, "wrong password 1");
    const unknown = await loginAs(uniqueName("ghost"), "wrong password 1");
    expect(unknown.text).toBe(wrong.text);
    expect(unknown.status).toBe(401);
  });
});
