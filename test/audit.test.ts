import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adminToken, ageRotations, call, expectError, PASSWORD, randomIp, refreshWith, registerUser, uniqueName } from "./helpers";

afterEach(() => vi.restoreAllMocks());

/** Captures every line the worker logs while `run` runs. */
async function captureLogs(run: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  }
  await run();
  vi.restoreAllMocks();
  return lines;
}

describe("logs", () => {
  it("by default writes no line per request (Observability records requests), but answers with X-Request-Id", async () => {
    let res: Awaited<ReturnType<typeof call>> | undefined;
    const lines = await captureLogs(async () => void (res = await call("GET", "/health")));
    expect(lines.map((l) => JSON.parse(l)).filter((l) => l.event === "request")).toEqual([]);
    expect(res!.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("with LOG_REQUESTS on, writes one JSON line per request with request id, method, path, status and duration", async () => {
    const lines = await captureLogs(async () => void (await call("GET", "/health?secret=1", { bindings: { LOG_REQUESTS: "on" } as Partial<Env> })));
    const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.event === "request" && l.path !== "/openapi.json");
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: "GET", path: "/health", status: 200, request_id: expect.any(String), duration_ms: expect.any(Number) });
  });

  it("never holds a password, hash, token or pepper, in any log line or audit row", async () => {
    const newPassword = "changed secret 99";
    const secrets: string[] = [PASSWORD, newPassword, "wrong password 1", env.PASSWORD_PEPPER, JSON.parse(env.JWT_PRIVATE_KEY).d];
    const lines = await captureLogs(async () => {
      const reg = await registerUser();
      const other = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
      await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" } });
      await call("POST", "/login", { body: { username: uniqueName("ghost"), password: "wrong password 1" } });
      const next = await refreshWith(reg.refresh_token);
      await ageRotations(60);
      await refreshWith(reg.refresh_token); // reuse: the session dies
      await call("POST", "/password", { token: other.body.access_token, body: { current_password: PASSWORD, new_password: newPassword } });
      await call("POST", "/logout", { token: other.body.access_token });
      const ip = randomIp();
      for (let i = 0; i < 21; i++)
        await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" }, headers: { "cf-connecting-ip": ip } });
      secrets.push(reg.access_token, reg.refresh_token, other.body.access_token, other.body.refresh_token, next.body.access_token, next.body.refresh_token);
      const hashes = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(reg.user.id).all<{ password_hash: string }>();
      secrets.push(...hashes.results.map((r) => r.password_hash));
      const refreshHashes = await env.DB.prepare("SELECT refresh_token_hash AS h FROM sessions UNION SELECT token_hash FROM rotated_refresh_tokens").all<{
        h: string;
      }>();
      secrets.push(...refreshHashes.results.map((r) => r.h));
    });
    const audit = JSON.stringify((await env.DB.prepare("SELECT * FROM audit_events").all()).results);
    const events = new Set(lines.map((l) => JSON.parse(l).event));
    for (const e of ["register", "login_succeeded", "login_failed", "refresh_reuse_detected", "password_changed", "logout", "rate_limited"])
      expect(events).toContain(e);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      for (const line of lines) expect(line).not.toContain(secret);
      expect(audit).not.toContain(secret);
    }
  });
});

describe("GET /admin/audit", () => {
  it("answers 401 without a token and 403 for a plain user", async () => {
    expectError(await call("GET", "/admin/audit"), 401, "invalid_token");
    expectError(await call("GET", "/admin/audit", { token: (await registerUser()).access_token }), 403, "forbidden");
  });

  it("lists one user's security events newest first, every kind the issue names", async () => {
    const token = await adminToken();
    const reg = await registerUser();
    const second = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    for (let i = 0; i < 5; i++) await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" } });
    await env.DB.prepare("UPDATE users SET locked_until = NULL WHERE id = ?").bind(reg.user.id).run();
    await call("POST", "/password", { token: second.body.access_token, body: { current_password: PASSWORD, new_password: "changed secret 99" } });
    await call("POST", "/logout/all", { body: { current_password: "changed secret 99" }, token: second.body.access_token });

    const res = await call("GET", `/admin/audit?user_id=${reg.user.id}`, { token });
    expect(res.status, res.text).toBe(200);
    const names = res.body.events.map((e: { event: string }) => e.event);
    expect(names).toEqual(["logout_all", "password_changed", "account_locked", ...Array(5).fill("login_failed"), "login_succeeded", "register"]);
    expect(res.body.events[0]).toMatchObject({
      user_id: reg.user.id,
      request_id: expect.any(String),
      ip: expect.stringMatching(/^10\./),
      created_at: expect.any(String),
      detail: { sessions_revoked: 1 },
    }); // the password change already ended the other one
    const ids = res.body.events.map((e: { id: number }) => e.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
  });

  it("pages with an opaque cursor, and refuses a bad one", async () => {
    const token = await adminToken();
    const reg = await registerUser();
    for (let i = 0; i < 3; i++) await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    const all = (await call("GET", `/admin/audit?user_id=${reg.user.id}`, { token })).body.events.map((e: { id: number }) => e.id);
    expect(all).toHaveLength(4);
    const first = await call("GET", `/admin/audit?user_id=${reg.user.id}&limit=3`, { token });
    const rest = await call("GET", `/admin/audit?user_id=${reg.user.id}&limit=3&cursor=${first.body.next_cursor}`, { token });
    expect([...first.body.events, ...rest.body.events].map((e: { id: number }) => e.id)).toEqual(all);
    expect(rest.body.next_cursor).toBeNull();
    expectError(await call("GET", "/admin/audit?cursor=bogus", { token }), 400, "validation_failed");
  });
});
