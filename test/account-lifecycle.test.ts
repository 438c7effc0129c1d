import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, expectError, login, PASSWORD, randomIp, refreshWith, registerUser, sidOf } from "./helpers";

afterEach(() => vi.restoreAllMocks());

const NEW_PASSWORD = "brand new secret 7";

describe("POST /password", () => {
  it("changes the password, rehashes, and kills every other session but keeps this one", async () => {
    const reg = await registerUser();
    const other = await login(reg.input.username);
    const before = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(reg.user.id).first<{ password_hash: string }>();

    const res = await call("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.sessions_revoked).toBe(1);
    expect(res.body.message).toBe("Password changed; 1 other session was signed out, this one stays");

    expectError(await call("GET", "/protected", { token: other.body.access_token }), 401, "invalid_token");
    expectError(await refreshWith(other.body.refresh_token), 401, "invalid_token");
    expect((await call("GET", "/protected", { token: reg.access_token })).status).toBe(200);
    expect((await refreshWith(reg.refresh_token)).status).toBe(200);

    expectError(await login(reg.input.username, PASSWORD), 401, "invalid_credentials");
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200);
    const after = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(reg.user.id).first<{ password_hash: string }>();
    expect(after!.password_hash).not.toBe(before!.password_hash);
  });

  it("says so plainly when no other session was signed in (0 is not a failure)", async () => {
    const reg = await registerUser();
    const res = await call("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ message: "Password changed; no other session was signed in, this one stays", sessions_revoked: 0 });
  });

  it("answers 401 invalid_credentials for a wrong current password and changes nothing", async () => {
    const reg = await registerUser();
    const other = await login(reg.input.username);
    const res = await call("POST", "/password", { token: reg.access_token, body: { current_password: "wrong password 1", new_password: NEW_PASSWORD } });
    expectError(res, 401, "invalid_credentials");
    expect((await call("GET", "/protected", { token: other.body.access_token })).status).toBe(200);
    expect((await login(reg.input.username, PASSWORD)).status).toBe(200);
  });

  it("applies the password policy to the new password, and refuses the same password", async () => {
    const reg = await registerUser();
    const weak = await call("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password: "short" } });
    expectError(weak, 400, "validation_failed");
    expect(weak.body.fields).toHaveProperty("new_password");
    const same = await call("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password: PASSWORD } });
    expectError(same, 400, "validation_failed");
    expect(same.body.fields).toHaveProperty("new_password");
    expectError(await call("POST", "/password", { token: reg.access_token, body: { new_password: NEW_PASSWORD } }), 400, "validation_failed");
  });

  it("answers 401 without a token", async () => {
    expectError(await call("POST", "/password", { body: { current_password: PASSWORD, new_password: NEW_PASSWORD } }), 401, "invalid_token");
  });
});

describe("POST /password has its own budget, apart from the login lock", () => {
  const change = (token: string, current_password: string) => call("POST", "/password", { token, body: { current_password, new_password: NEW_PASSWORD } });

  it("is never refused for someone else's failed logins: not by the account lock, not by the login limiter", async () => {
    const reg = await registerUser();
    // Somebody else locks the account and spends its per-account login budget.
    for (let i = 0; i < 11; i++)
      await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" }, headers: { "cf-connecting-ip": randomIp() } });
    expectError(await login(reg.input.username), 429, "rate_limited");
    const res = await change(reg.access_token, PASSWORD);
    expect(res.status, res.text).toBe(200);
  });

  it("signs the session out after 5 wrong current passwords in it; the account itself stays open", async () => {
    const reg = await registerUser();
    for (let i = 0; i < 4; i++) expectError(await change(reg.access_token, "wrong password 1"), 401, "invalid_credentials");
    const fifth = await change(reg.access_token, "wrong password 1");
    expectError(fifth, 401, "invalid_token");
    expect(fifth.body.message).toMatch(/signed out/);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expect((await login(reg.input.username)).status).toBe(200);
  });

  it("resets the budget on a right password", async () => {
    const reg = await registerUser();
    for (let i = 0; i < 4; i++) await change(reg.access_token, "wrong password 1");
    expect((await change(reg.access_token, PASSWORD)).status).toBe(200);
    const { password_failures } = (await env.DB.prepare("SELECT password_failures FROM sessions WHERE id = ?")
      .bind(sidOf(reg.access_token))
      .first<{ password_failures: number }>())!;
    expect(password_failures).toBe(0);
  });

  it("checks no more guesses than the budget, however many arrive at once", async () => {
    const reg = await registerUser();
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    const results = await Promise.all(Array.from({ length: 10 }, () => change(reg.access_token, "wrong password 1")));
    expect(derive).toHaveBeenCalledTimes(5);
    for (const r of results) expect([401, 429]).toContain(r.status);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
  });
});

describe("GET /sessions and DELETE /sessions/:id", () => {
  it("lists the caller's live sessions with the current one marked", async () => {
    const reg = await registerUser();
    const other = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, headers: { "user-agent": "PhoneBrowser/1.0" } });
    const gone = await login(reg.input.username);
    await call("POST", "/logout", { token: gone.body.access_token });

    const res = await call("GET", "/sessions", { token: reg.access_token });
    expect(res.status).toBe(200);
    const byId = new Map(res.body.sessions.map((s: any) => [s.id, s]));
    expect(byId.size).toBe(2);
    expect(byId.get(sidOf(reg.access_token))).toMatchObject({ current: true, created_at: expect.any(String), last_used_at: expect.any(String) });
    expect(byId.get(sidOf(other.body.access_token))).toMatchObject({ current: false, user_agent: "PhoneBrowser/1.0" });
    expect(byId.has(sidOf(gone.body.access_token))).toBe(false);
    expect(res.text).not.toMatch(/hash/i);
  });

  it("revokes one of the caller's sessions: its access and refresh tokens die", async () => {
    const reg = await registerUser();
    const other = await login(reg.input.username);
    const res = await call("DELETE", `/sessions/${sidOf(other.body.access_token)}`, { body: { current_password: PASSWORD }, token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    expectError(await call("GET", "/protected", { token: other.body.access_token }), 401, "invalid_token");
    expectError(await refreshWith(other.body.refresh_token), 401, "invalid_token");
    expect((await call("GET", "/protected", { token: reg.access_token })).status).toBe(200);
    // Again, while its access tokens could still live: 200 (a retry completes a revocation, auth/core/revocations.ts).
    const sid = sidOf(other.body.access_token);
    expect((await call("DELETE", `/sessions/${sid}`, { body: { current_password: PASSWORD }, token: reg.access_token })).status).toBe(200);
    // Once none can: not a session there is anything left to revoke.
    await env.DB.prepare("UPDATE sessions SET access_expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1000, sid)
      .run();
    expectError(await call("DELETE", `/sessions/${sid}`, { body: { current_password: PASSWORD }, token: reg.access_token }), 404, "not_found");
  });

  it("answers 404 for another user's session or an unknown id, and leaves it alone", async () => {
    const me = await registerUser();
    const victim = await registerUser();
    expectError(
      await call("DELETE", `/sessions/${sidOf(victim.access_token)}`, { body: { current_password: PASSWORD }, token: me.access_token }),
      404,
      "not_found",
    );
    expectError(await call("DELETE", "/sessions/no-such-session", { body: { current_password: PASSWORD }, token: me.access_token }), 404, "not_found");
    expect((await call("GET", "/protected", { token: victim.access_token })).status).toBe(200);
  });

  it("answers 401 without a token", async () => {
    expectError(await call("GET", "/sessions"), 401, "invalid_token");
    expectError(await call("DELETE", "/sessions/x"), 401, "invalid_token");
  });
});
