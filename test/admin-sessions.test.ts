import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { adminToken, call, expectError, login, refreshWith, registerUser, sidOf } from "./helpers";
import { approvedCode, codeForm, createTestClient, tokenRequest } from "./oauth";

/**
 * An admin ends the sessions of one user (POST /admin/users/{id}/sessions/revoke) or of every user
 * (POST /admin/sessions/revoke-all), and leaves the accounts usable (ASVS 7.4.5).
 */

const auditOf = (event: string) =>
  env.DB.prepare("SELECT user_id, session_id, detail FROM audit_events WHERE event = ? ORDER BY id DESC").bind(event).first<{
    user_id: string;
    session_id: string | null;
    detail: string;
  }>();
const works = async (token: string) => (await call("GET", "/protected", { token })).status === 200;

describe("POST /admin/users/{id}/sessions/revoke", () => {
  it("ends every session of the user, access and refresh tokens alike; the account stays usable; audited with the admin", async () => {
    const admin = await adminToken();
    const reg = await registerUser();
    const phone = await login(reg.input.username);
    const bystander = await registerUser();
    const res = await call("POST", `/admin/users/${reg.user.id}/sessions/revoke`, { token: admin });
    expect(res.status, res.text).toBe(200);
    expect(res.body.sessions_revoked).toBe(2);
    expect(await works(reg.access_token)).toBe(false);
    expect(await works(phone.body.access_token)).toBe(false);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expectError(await refreshWith(phone.body.refresh_token), 401, "invalid_token");
    // The account is as it was: a sign-in works at once. Other users and the admin are untouched.
    const again = await login(reg.input.username);
    expect(again.status, again.text).toBe(200);
    expect(await works(again.body.access_token)).toBe(true);
    expect(await works(bystander.access_token)).toBe(true);
    expect(await works(admin)).toBe(true);
    const row = await auditOf("admin_sessions_ended");
    expect(row?.user_id).toBe(reg.user.id);
    expect(JSON.parse(row!.detail)).toMatchObject({ by: expect.any(String), sessions_revoked: 2 });
  });

  it("with the admin's own id ends the admin's sessions, this one included, as documented", async () => {
    const admin = await adminToken();
    const id = (await call("GET", "/me", { token: admin })).body.user.id as string;
    const res = await call("POST", `/admin/users/${id}/sessions/revoke`, { token: admin });
    expect(res.status, res.text).toBe(200);
    expect(await works(admin)).toBe(false);
  });

  it("is refused to a non-admin (403) and to no token (401), and ends nothing; an unknown user is 404", async () => {
    const victim = await registerUser();
    const user = await registerUser();
    expectError(await call("POST", `/admin/users/${victim.user.id}/sessions/revoke`, { token: user.access_token }), 403, "forbidden");
    expectError(await call("POST", `/admin/users/${victim.user.id}/sessions/revoke`), 401, "invalid_token");
    expect(await works(victim.access_token)).toBe(true);
    expect((await refreshWith(victim.refresh_token)).status).toBe(200);
    expectError(await call("POST", "/admin/users/no-such-user/sessions/revoke", { token: await adminToken() }), 404, "not_found");
  });
});

describe("POST /admin/sessions/revoke-all", () => {
  afterEach(() => env.REVOKED.delete("cutoff")); // the cut-off would end every later test's sessions too

  it("ends every session of every user, the admin's own included; apps' grants too; everyone can sign in again", async () => {
    const admin = await adminToken();
    const a = await registerUser();
    const b = await registerUser();
    const client = await createTestClient();
    const code = await approvedCode(client, b, { scope: "openid profile offline_access" });
    const grant = (await tokenRequest(codeForm(client, code))).body as { refresh_token: string };
    const res = await call("POST", "/admin/sessions/revoke-all", { token: admin });
    expect(res.status, res.text).toBe(200);
    const before = Date.parse(res.body.signed_in_before);
    expect(before).toBeGreaterThanOrEqual(Date.now() - 1000);
    for (const token of [admin, a.access_token, b.access_token]) expect(await works(token)).toBe(false);
    for (const token of [a.refresh_token, b.refresh_token]) expectError(await refreshWith(token), 401, "invalid_token");
    const form = {
      grant_type: "refresh_token",
      refresh_token: grant.refresh_token,
      client_id: client.id,
      ...(client.secret ? { client_secret: client.secret } : {}),
    };
    expect((await tokenRequest(form)).body.error).toBe("invalid_grant");
    // A sign-in after the cut-off lives: its tokens work and it refreshes.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, before - Date.now() + 5)));
    const again = await login(a.input.username);
    expect(await works(again.body.access_token)).toBe(true);
    const next = await refreshWith(again.body.refresh_token);
    expect(next.status, next.text).toBe(200);
    expect(await works(next.body.access_token)).toBe(true);
    // Older sessions are no longer listed either.
    const listed = await call("GET", "/sessions", { token: next.body.access_token });
    expect(listed.body.sessions.map((s: { id: string }) => s.id)).toEqual([sidOf(again.body.access_token)]);
  });

  it("is one KV entry, kept until the last session it ends would have expired; audited", async () => {
    const admin = await adminToken();
    const res = await call("POST", "/admin/sessions/revoke-all", { token: admin });
    expect(res.status, res.text).toBe(200);
    const { keys } = await env.REVOKED.list({ prefix: "cutoff" });
    expect(keys.map((k) => k.name)).toEqual(["cutoff"]);
    const last = await env.DB.prepare("SELECT max(expires_at) AS t FROM sessions").first<{ t: number }>();
    expect(keys[0]!.expiration! * 1000).toBeGreaterThanOrEqual(last!.t - 1000);
    const row = await auditOf("all_sessions_ended");
    expect(row?.session_id).toBe(sidOf(admin));
  });

  it("is refused to a non-admin (403): nobody is signed out", async () => {
    const user = await registerUser();
    expectError(await call("POST", "/admin/sessions/revoke-all", { token: user.access_token }), 403, "forbidden");
    expect(await env.REVOKED.get("cutoff")).toBeNull();
    expect(await works(user.access_token)).toBe(true);
    expect((await refreshWith(user.refresh_token)).status).toBe(200);
  });
});
