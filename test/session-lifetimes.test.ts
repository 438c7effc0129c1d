import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { call, expectError, refreshWith, registerUser, sidOf } from "./helpers";
import { approvedCode, codeForm, createTestClient, tokenRequest } from "./oauth";

/**
 * The idle timeout (REFRESH_IDLE_TTL, docs/security.md "Session lifetimes"): a refresh token unused
 * that long is refused like an expired one, for the API's own sessions and apps' grants alike. The
 * absolute lifetime is test/refresh.test.ts's.
 */

const IDLE_MS = Number(env.REFRESH_IDLE_TTL ?? 1_209_600) * 1000;
const MINUTE = 60_000;

/** Says the session was last used `ms` ago (a refresh or its sign-in writes last_used_at). */
const lastUsedAgo = (sessionId: string, ms: number) =>
  env.DB.prepare("UPDATE sessions SET last_used_at = ? WHERE id = ?")
    .bind(Date.now() - ms, sessionId)
    .run();

describe("the idle timeout", () => {
  it("refuses a refresh token unused just past REFRESH_IDLE_TTL: 401 invalid_token, and the session is over", async () => {
    const reg = await registerUser();
    const sid = sidOf(reg.access_token);
    await lastUsedAgo(sid, IDLE_MS + MINUTE);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    // Over: refused again (not taken for a replay that would need the grace window), and no longer listed.
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    await env.DB.prepare("UPDATE sessions SET access_expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1000, sid)
      .run();
    const other = await call("POST", "/login", { body: { username: reg.input.username, password: reg.input.password } });
    const listed = await call("GET", "/sessions", { token: other.body.access_token });
    expect(listed.body.sessions.map((s: { id: string }) => s.id)).not.toContain(sid);
  });

  it("takes a refresh token unused just under REFRESH_IDLE_TTL, and the refresh restarts the idle clock", async () => {
    const reg = await registerUser();
    const sid = sidOf(reg.access_token);
    await lastUsedAgo(sid, IDLE_MS - MINUTE);
    const next = await refreshWith(reg.refresh_token);
    expect(next.status, next.text).toBe(200);
    const row = await env.DB.prepare("SELECT last_used_at FROM sessions WHERE id = ?").bind(sid).first<{ last_used_at: number }>();
    expect(Date.now() - row!.last_used_at).toBeLessThan(MINUTE);
  });

  it("follows REFRESH_IDLE_TTL as configured: one hour", async () => {
    const reg = await registerUser();
    await lastUsedAgo(sidOf(reg.access_token), 2 * 3_600_000);
    const refused = await call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, bindings: { REFRESH_IDLE_TTL: "3600" } });
    expectError(refused, 401, "invalid_token");
  });

  it("refuses a configuration whose idle timeout is not longer than ACCESS_TOKEN_TTL: every refresh would be refused", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const reg = await registerUser();
    const res = await call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, bindings: { REFRESH_IDLE_TTL: "900", ACCESS_TOKEN_TTL: "900" } });
    expectError(res, 500, "internal_error");
    const line = JSON.parse(String(logged.mock.calls.at(-1)![0]));
    expect(line).toMatchObject({ event: "config_invalid", problems: [expect.stringMatching(/^REFRESH_IDLE_TTL: /)] });
    logged.mockRestore();
    // 30 minutes against 15: what a deployment after NIST AAL2's inactivity limit sets, accepted.
    expect((await call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, bindings: { REFRESH_IDLE_TTL: "1800" } })).status).toBe(200);
  });

  it("applies to an app's grant too: its refresh token unused that long is invalid_grant", async () => {
    const client = await createTestClient();
    const user = await registerUser();
    const code = await approvedCode(client, user, { scope: "openid profile offline_access" });
    const tokens = (await tokenRequest(codeForm(client, code))).body as { access_token: string; refresh_token: string };
    const form = {
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token,
      client_id: client.id,
      ...(client.secret ? { client_secret: client.secret } : {}),
    };
    await lastUsedAgo(sidOf(tokens.access_token), IDLE_MS + MINUTE);
    const refused = await tokenRequest(form);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.error).toBe("invalid_grant");
    await lastUsedAgo(sidOf(tokens.access_token), IDLE_MS - MINUTE);
    expect((await tokenRequest(form)).status).toBe(200);
  });
});
