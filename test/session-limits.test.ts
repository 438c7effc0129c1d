import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ApiResponse, call, decodeJwtPart, expectError, forgeToken, login, nowSeconds, PASSWORD, refreshWith, registerUser, sidOf } from "./helpers";

/**
 * Platform limits and session lifetimes: any number of sessions within Workers' 1,000 KV operations
 * a request, a per-user session cap, paged session lists, and access tokens that never outlive
 * their session.
 */

afterEach(() => vi.restoreAllMocks());

/** Inserts `n` live sessions for a user straight into D1 (logins would hit the per-account limit). */
async function addSessions(userId: string, n: number) {
  const now = Date.now();
  const rows = Array.from({ length: n }, (_, i) =>
    env.DB.prepare(
      "INSERT INTO sessions (id, user_id, refresh_token_hash, user_agent, created_at, last_used_at, access_expires_at, expires_at) VALUES (?, ?, ?, 'bulk', ?, ?, ?, ?)",
    ).bind(crypto.randomUUID(), userId, crypto.randomUUID(), now - 60_000 - i, now - 60_000, now + 900_000, now + 86_400_000),
  );
  for (let i = 0; i < rows.length; i += 100) await env.DB.batch(rows.slice(i, i + 100));
}

/** Counts KV operations per request, the way Workers limits them (1,000 a request). */
function countingKv() {
  const ops = { n: 0 };
  const kv = new Proxy(env.REVOKED, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        ops.n++;
        return value.apply(target, args);
      };
    },
  });
  return { kv, ops };
}

describe("any number of sessions", () => {
  it("logout-all ends 1,000 sessions with one KV write, and every access token of them is refused", async () => {
    const reg = await registerUser();
    await addSessions(reg.user.id, 1000);
    const [first] = (await env.DB.prepare("SELECT id FROM sessions WHERE user_id = ? AND user_agent = 'bulk' LIMIT 1").bind(reg.user.id).all<{ id: string }>())
      .results;
    const bulkToken = await forgeToken({ claims: { sub: reg.user.id, sid: first!.id, epoch: 0 } });
    expect((await call("GET", "/protected", { token: bulkToken })).status).toBe(200);

    const { kv, ops } = countingKv();
    const res = await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: reg.access_token, bindings: { REVOKED: kv } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.sessions_revoked).toBe(1001);
    expect(ops.n).toBe(2); // the verify path's one bulk read, and one write: the user's epoch entry
    expectError(await call("GET", "/protected", { token: bulkToken }), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    // A login afterwards starts a new epoch's session: it works at once.
    const again = await login(reg.input.username);
    expect((await call("GET", "/protected", { token: again.body.access_token })).status).toBe(200);
  });

  it("a password change ends 1,000 other sessions with one KV write and keeps the caller's", async () => {
    const reg = await registerUser();
    await addSessions(reg.user.id, 1000);
    const { kv, ops } = countingKv();
    const res = await call("POST", "/password", {
      token: reg.access_token,
      body: { current_password: PASSWORD, new_password: "brand new secret 7" },
      bindings: { REVOKED: kv },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.sessions_revoked).toBe(1000);
    expect(ops.n).toBe(2);
    expect((await call("GET", "/protected", { token: reg.access_token })).status).toBe(200);
    // The kept session's next tokens belong to the new epoch; a later logout-all ends them too.
    const next = await refreshWith(reg.refresh_token);
    expect(decodeJwtPart(next.body.access_token, 1).epoch).toBe(1);
    await call("POST", "/logout/all", { body: { current_password: "brand new secret 7" }, token: next.body.access_token });
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
  });

  it("caps live sessions per user: a new login ends the oldest one", async () => {
    const reg = await registerUser();
    const bindings = { MAX_SESSIONS_PER_USER: "2" } as Partial<Env>;
    const second = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings });
    const third = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings });
    expect(third.status).toBe(200);
    // The registration's session was the oldest: it is over, access and refresh token alike.
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    for (const s of [second.body, third.body]) expect((await call("GET", "/protected", { token: s.access_token })).status).toBe(200);
  });

  it("ends at most 20 sessions beyond the cap per login, so one login stays within the KV limit", async () => {
    const reg = await registerUser();
    await addSessions(reg.user.id, 60);
    const { kv, ops } = countingKv();
    const res = await call("POST", "/login", {
      body: { username: reg.input.username, password: PASSWORD },
      bindings: { REVOKED: kv, MAX_SESSIONS_PER_USER: "10" } as Partial<Env>,
    });
    expect(res.status, res.text).toBe(200);
    expect(ops.n).toBe(20);
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ? AND revoked_at IS NULL")
      .bind(reg.user.id)
      .first<{ n: number }>())!;
    expect(n).toBe(62 - 20);
  });

  it("pages GET /sessions: every live session once, newest first, the current one marked", async () => {
    const reg = await registerUser();
    await addSessions(reg.user.id, 44);
    const seen: { id: string; current: boolean; created_at: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: ApiResponse = await call("GET", `/sessions?limit=20${cursor ? `&cursor=${cursor}` : ""}`, { token: reg.access_token });
      expect(res.status, res.text).toBe(200);
      expect(res.body.sessions.length).toBeLessThanOrEqual(20);
      seen.push(...res.body.sessions);
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(new Set(seen.map((s) => s.id)).size).toBe(45);
    expect(seen.filter((s) => s.current).map((s) => s.id)).toEqual([sidOf(reg.access_token)]);
    const times = seen.map((s) => Date.parse(s.created_at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expectError(await call("GET", "/sessions?limit=101", { token: reg.access_token }), 400, "validation_failed");
    expectError(await call("GET", "/sessions?cursor=bogus", { token: reg.access_token }), 400, "validation_failed");
  });
});

describe("access tokens and their session's end", () => {
  it("never signs an access token that outlives its session", async () => {
    const reg = await registerUser();
    const end = Date.now() + 100_000;
    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE id = ?").bind(end, sidOf(reg.access_token)).run();
    const res = await refreshWith(reg.refresh_token);
    expect(res.status).toBe(200);
    expect(decodeJwtPart(res.body.access_token, 1).exp as number).toBeLessThanOrEqual(Math.floor(end / 1000));
    expect(res.body.expires_in).toBeLessThanOrEqual(100);
  });

  it("signs with the request's one clock reading: exp and iat agree with the session row", async () => {
    const reg = await registerUser();
    // Every clock reading, `new Date()` and `Date.now()` alike, is five seconds after the one before.
    const RealDate = Date;
    let skew = 0;
    const later = () => RealDate.now() + (skew += 5000);
    globalThis.Date = class extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length === 0) super(later());
        else super(...(args as [number]));
      }
      static override now() {
        return later();
      }
    } as DateConstructor;
    let res: Awaited<ReturnType<typeof login>>;
    try {
      res = await login(reg.input.username);
    } finally {
      globalThis.Date = RealDate;
    }
    expect(res.status, res.text).toBe(200);
    const { iat, exp, sid } = decodeJwtPart(res.body.access_token, 1) as { iat: number; exp: number; sid: string };
    const row = (await env.DB.prepare("SELECT created_at, access_expires_at FROM sessions WHERE id = ?")
      .bind(sid)
      .first<{ created_at: number; access_expires_at: number }>())!;
    expect(iat).toBe(Math.floor(row.created_at / 1000));
    expect(exp).toBe(Math.floor(row.access_expires_at / 1000));
  });

  it("revokes, lists and logs out a session whose refresh lifetime ended while an access token lives", async () => {
    const reg = await registerUser();
    const other = await login(reg.input.username);
    const sid = sidOf(other.body.access_token);
    // Refresh lifetime over, last access token still valid (a row from before exp was capped).
    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1000, sid)
      .run();
    const listed = await call("GET", "/sessions", { token: reg.access_token });
    expect(listed.body.sessions.map((s: { id: string }) => s.id)).toContain(sid);
    expect((await call("DELETE", `/sessions/${sid}`, { body: { current_password: PASSWORD }, token: reg.access_token })).status).toBe(200);
    expectError(await call("GET", "/protected", { token: other.body.access_token }), 401, "invalid_token");
    // And by the session's own logout.
    const third = await login(reg.input.username);
    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1000, sidOf(third.body.access_token))
      .run();
    expect((await call("POST", "/logout", { token: third.body.access_token })).status).toBe(200);
    expectError(await call("GET", "/protected", { token: third.body.access_token }), 401, "invalid_token");
  });

  it("records the user on a reuse-detection audit row even when the session was already revoked", async () => {
    const warn = vi.spyOn(console, "warn");
    const reg = await registerUser();
    await refreshWith(reg.refresh_token);
    await call("POST", "/logout", { token: reg.access_token });
    await call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, headers: { "cf-connecting-ip": "10.66.6.6" } });
    const events = warn.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(events).toContainEqual(expect.objectContaining({ event: "refresh_reuse_detected", user_id: reg.user.id }));
    const row = await env.DB.prepare("SELECT user_id FROM audit_events WHERE event = 'refresh_reuse_detected' AND session_id = ?")
      .bind(sidOf(reg.access_token))
      .first<{ user_id: string }>();
    expect(row!.user_id).toBe(reg.user.id);
  });

  it("refuses a token of an older epoch unless it belongs to the kept session", async () => {
    const reg = await registerUser();
    await env.REVOKED.put(`usr:${reg.user.id}`, JSON.stringify({ epoch: 1, kept: "kept-session" }), { expirationTtl: 60 });
    const exp = nowSeconds() + 300;
    expectError(
      await call("GET", "/protected", { token: await forgeToken({ claims: { sub: reg.user.id, sid: "s-x", epoch: 0, exp } }) }),
      401,
      "invalid_token",
    );
    expect((await call("GET", "/protected", { token: await forgeToken({ claims: { sub: reg.user.id, sid: "kept-session", epoch: 0, exp } }) })).status).toBe(
      200,
    );
    expect((await call("GET", "/protected", { token: await forgeToken({ claims: { sub: reg.user.id, sid: "s-x", epoch: 1, exp } }) })).status).toBe(200);
  });
});
