import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { stepAt } from "../src/auth/core/totp";
import { awayFromStepEdge, call, codeAt, d1WritesBefore, login, PASSWORD, registerUser, userWithPasskey, userWithTotp } from "./helpers";

/**
 * A sign-in's batch leaves out the cap's eviction, a held recovery's cancel and the lock's reset where
 * its first read showed they had nothing to do (db/sign-in-room.ts, auth/core/sign-in.ts). Here another
 * request's write lands between that read and the batch, and the outcome is still the full batch's.
 */

const now = Date.now();
const liveSessions = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ? AND revoked_at IS NULL").bind(userId).first<{ n: number }>())!.n;
const holdOf = (userId: string) => env.DB.prepare("SELECT kind FROM recovery_holds WHERE user_id = ?").bind(userId).first();
const sessionsOf = (userId: string) =>
  [
    "INSERT INTO sessions (id, user_id, refresh_token_hash, created_at, last_used_at, access_expires_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?)",
    ...[1, 2].flatMap((i) => [crypto.randomUUID(), userId, crypto.randomUUID(), now - i, now, now + 900_000, now + 86_400_000]),
  ] as [string, ...unknown[]];
/** A hold a mailbox asked for (auth/mail/recovery-holds.ts), for the user's TOTP as it stands. */
const holdFor = (userId: string): [string, ...unknown[]] => [
  "INSERT INTO recovery_holds (user_id, kind, totp_enabled_at, requested_at, due_at) SELECT id, 'not_me', coalesce(totp_enabled_at, 0), ?, ? FROM users WHERE id = ?",
  now,
  now + 7 * 86_400_000,
  userId,
];

describe("what a sign-in's first read saw, and a write that lands before its batch", () => {
  it("sessions added meanwhile past the cap: the login still ends the oldest, and the cap holds", async () => {
    const reg = await registerUser(); // one live session: room for one more under a cap of 2
    const DB = d1WritesBefore({ 2: [sessionsOf(reg.user.id)] });
    const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: { DB, MAX_SESSIONS_PER_USER: "2" } });
    expect(res.status, res.text).toBe(200);
    expect(await liveSessions(reg.user.id)).toBe(2);
    expect((await call("GET", "/protected", { token: res.body.access_token })).status).toBe(200);
  });

  it("a failure counted meanwhile stands: the login's right password was checked first", async () => {
    const reg = await registerUser();
    const DB = d1WritesBefore({ 2: [["UPDATE users SET failed_logins = 1, last_failed_login_at = ? WHERE id = ?", now, reg.user.id]] });
    const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: { DB } });
    expect(res.status, res.text).toBe(200);
    const row = await env.DB.prepare("SELECT failed_logins FROM users WHERE id = ?").bind(reg.user.id).first<{ failed_logins: number }>();
    expect(row!.failed_logins).toBe(1);
    // A failure before the login's read is cleared by it, as ever.
    expect((await login(reg.input.username)).status).toBe(200);
    expect((await env.DB.prepare("SELECT failed_logins FROM users WHERE id = ?").bind(reg.user.id).first<{ failed_logins: number }>())!.failed_logins).toBe(0);
  });

  it("a hold asked for meanwhile: the second step still cancels it", async () => {
    const u = await userWithTotp();
    const first = await login(u.input.username);
    await awayFromStepEdge();
    const DB = d1WritesBefore({ 2: [holdFor(u.user.id)] });
    const res = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(u.secret) }, bindings: { DB } });
    expect(res.status, res.text).toBe(200);
    expect(await holdOf(u.user.id)).toBeNull();
    const audit = await env.DB.prepare("SELECT event FROM audit_events WHERE user_id = ? AND event IN ('login_succeeded', 'recovery_cancelled') ORDER BY id")
      .bind(u.user.id)
      .all();
    expect(audit.results.map((r) => r.event).slice(-2)).toEqual(["login_succeeded", "recovery_cancelled"]);
  });

  it("a hold meanwhile, then the code spent by another sign-in before the batch runs again: no session from it", async () => {
    const u = await userWithTotp();
    const first = await login(u.input.username);
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    const step = stepAt(new Date());
    const DB = d1WritesBefore({ 2: [holdFor(u.user.id)], 3: [["UPDATE users SET totp_last_step = ? WHERE id = ?", step, u.user.id]] });
    const res = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code }, bindings: { DB } });
    expect(res.status, res.text).toBe(401);
    expect(await liveSessions(u.user.id)).toBe(1); // the registration's only
    expect(await holdOf(u.user.id)).not.toBeNull();
  });

  it("a hold asked for meanwhile: a passkey sign-in still cancels it, and records the counter", async () => {
    const u = await userWithPasskey();
    const options = (await call("POST", "/passkeys/login/options")).body.options;
    const DB = d1WritesBefore({ 2: [holdFor(u.user.id)] });
    const res = await call("POST", "/passkeys/login/verify", { body: { response: await u.authenticator.assert(options) }, bindings: { DB } });
    expect(res.status, res.text).toBe(200);
    expect(await holdOf(u.user.id)).toBeNull();
    const row = await env.DB.prepare("SELECT counter, last_used_at FROM passkeys WHERE user_id = ?")
      .bind(u.user.id)
      .first<{ counter: number; last_used_at: number }>();
    expect(row!.last_used_at).toBeGreaterThan(0);
  });
});
