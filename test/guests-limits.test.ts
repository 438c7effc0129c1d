import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MEMBERS_ONLY } from "../src/middleware/members-only";
import { claimsOf, newGuest, userRow } from "./guests";
import { adminToken, type CallOptions, call, expectError, openApiDocument, PASSWORD, refreshWith, registerUser } from "./helpers";

/**
 * What a guest may not do (src/middleware/members-only.ts, one table): each route group is tried with a
 * guest's token (403 guest_not_allowed) and with a member's (anything but that), so a group missing
 * from the table, or a table row no route group answers to, fails here.
 */

/** One request per group of the table: what a guest would try there. */
const TRIES: Record<string, [string, string, CallOptions["body"]?]> = {
  admin: ["GET", "/admin/users"],
  organizations: ["POST", "/orgs", { name: "Guests Inc", slug: "guests-inc" }],
  invitations: ["POST", "/invitations/accept", { token: "x".repeat(43) }],
  api_keys: ["POST", "/keys", { name: "k", scopes: ["user"] }],
  app_consent: ["GET", "/oauth2/requests/some-request"],
  password_change: ["POST", "/password", { current_password: "x", new_password: "new password 42" }],
  email_change: ["POST", "/email", { new_email: "g@example.com" }],
  totp: ["POST", "/mfa/totp/setup", {}],
};

describe("a guest is refused the members' route groups", () => {
  it("every group of the table has a try here, and no try names a group the table lacks", () => {
    expect(Object.keys(TRIES).sort()).toEqual(MEMBERS_ONLY.map((g) => g.group).sort());
  });

  it.each(MEMBERS_ONLY.map((g) => g.group))("%s: 403 guest_not_allowed for a guest, not for a member", async (group) => {
    const [method, path, body] = TRIES[group]!;
    const guest = await newGuest();
    const refused = await call(method, path, { token: guest.access_token, body });
    expectError(refused, 403, "guest_not_allowed");
    const member = await registerUser();
    const answered = await call(method, path, { token: member.access_token, body });
    expect(answered.body?.error, answered.text).not.toBe("guest_not_allowed");
  });

  it("keeps what a guest may do: itself, its sessions, signing out", async () => {
    const guest = await newGuest();
    for (const [method, path] of [
      ["GET", "/me"],
      ["GET", "/me/security"],
      ["GET", "/sessions"],
      ["GET", "/protected"],
      ["GET", "/account/apps"],
    ] as const) {
      expect((await call(method, path, { token: guest.access_token })).status, `${method} ${path}`).toBe(200);
    }
    const security = await call("GET", "/me/security", { token: guest.access_token });
    expect(security.body.step_up).toMatchObject({ add_passkey: [], add_identity: [], delete_account: [] });
    expect((await call("POST", "/logout", { token: guest.access_token })).status).toBe(200);
  });

  it("a guest given a role anyway (straight in D1) is still refused the admin area", async () => {
    const guest = await newGuest();
    await env.DB.prepare(`UPDATE users SET roles = '["user","admin"]' WHERE id = ?`).bind(guest.user.id).run();
    const refreshed = await refreshWith(guest.refresh_token);
    expect(claimsOf(refreshed.body.access_token)).toMatchObject({ roles: ["user", "admin"], guest: true });
    expectError(await call("GET", "/admin/users", { token: refreshed.body.access_token }), 403, "guest_not_allowed");
    expectError(await call("GET", "/admin/audit", { token: refreshed.body.access_token }), 403, "guest_not_allowed");
  });

  it("an admin cannot grant a guest a role: 403 guest_not_allowed, the guest unchanged", async () => {
    const admin = await adminToken();
    const guest = await newGuest();
    const res = await call("PATCH", `/admin/users/${guest.user.id}`, { token: admin, body: { roles: ["user", "admin"], current_password: PASSWORD } });
    expectError(res, 403, "guest_not_allowed");
    expect(JSON.parse((await userRow(guest.user.id))!.roles)).toEqual(["user"]);
    // Its session was not ended by the refused change.
    expect((await refreshWith(guest.refresh_token)).status).toBe(200);
    // Disabling a guest stays possible (it only takes access away).
    expect((await call("PATCH", `/admin/users/${guest.user.id}`, { token: admin, body: { disabled: true } })).status).toBe(200);
  });

  it("the OpenAPI document lists 403 guest_not_allowed on every Bearer operation of those groups", async () => {
    const doc = await openApiDocument();
    const ops = Object.entries(doc.paths).flatMap(([path, byMethod]) => Object.entries(byMethod).map(([method, op]) => ({ path, method, op })));
    const guarded = ops.filter(({ path }) => MEMBERS_ONLY.some((g) => path === g.prefix || (!g.exact && path.startsWith(`${g.prefix}/`))));
    expect(guarded.length).toBeGreaterThan(20);
    for (const { path, method, op } of guarded) {
      const security = (op as { security?: Record<string, unknown>[] }).security;
      if (!security?.some((s) => "bearerAuth" in s)) continue;
      expect((op.responses["403"] as { description?: string } | undefined)?.description, `${method} ${path}`).toMatch(/guest_not_allowed/);
    }
  });
});
