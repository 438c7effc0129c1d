import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { adminToken, call, expectError, PASSWORD, registerUser } from "./helpers";
import { addMember, createOrg, roleIn, switchOrg, uniqueSlug } from "./orgs";

/** Organizations, members and roles (docs/organizations.md), through the worker's fetch against D1. */

/** An owner with an organization, and a member of each built-in role below. */
async function team() {
  const owner = await registerUser();
  const admin = await registerUser();
  const member = await registerUser();
  const orgId = await createOrg(owner.access_token);
  await addMember(orgId, admin.user.id, "admin");
  await addMember(orgId, member.user.id, "member");
  return { owner, admin, member, orgId };
}

const setRole = (token: string, orgId: string, userId: string, role: string) => call("PATCH", `/orgs/${orgId}/members/${userId}`, { token, body: { role } });
const remove = (token: string, orgId: string, userId: string) => call("DELETE", `/orgs/${orgId}/members/${userId}`, { token });
const count = async (sql: string, ...params: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...params)
    .first<{ n: number }>())!.n;

describe("creating and reading organizations", () => {
  it("the creator is its owner; the list and the read show the caller's role", async () => {
    const u = await registerUser();
    const slug = uniqueSlug();
    const res = await call("POST", "/orgs", { token: u.access_token, body: { name: "Acme", slug } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.organization).toMatchObject({ name: "Acme", slug, role: "owner" });
    const id = res.body.organization.id;
    expect(await roleIn(id, u.user.id)).toBe("owner");
    const list = await call("GET", "/orgs", { token: u.access_token });
    expect(list.body.organizations.map((o: { id: string }) => o.id)).toEqual([id]);
    const one = await call("GET", `/orgs/${id}`, { token: u.access_token });
    expect(one.body.organization).toMatchObject({ id, role: "owner" });
  });

  it("a slug is taken regardless of case, and stored lower case", async () => {
    const u = await registerUser();
    const slug = uniqueSlug();
    await createOrg(u.access_token, slug);
    expectError(await call("POST", "/orgs", { token: u.access_token, body: { name: "Again", slug: slug.toUpperCase() } }), 409, "org_slug_taken");
    const mixed = await call("POST", "/orgs", { token: u.access_token, body: { name: "Mixed", slug: `${slug}-X` } });
    expect(mixed.body.organization.slug).toBe(`${slug}-x`);
  });

  it("refuses malformed slugs and names with validation_failed", async () => {
    const u = await registerUser();
    for (const body of [
      { name: "A", slug: "ab" },
      { name: "A", slug: "-abc" },
      { name: "A", slug: "ab c" },
      { name: "A", slug: "a".repeat(41) },
      { name: "", slug: "okay-slug" },
      { name: "A\u202eB", slug: "okay-slug" },
    ]) {
      expectError(await call("POST", "/orgs", { token: u.access_token, body }), 400, "validation_failed");
    }
  });

  it("a user belongs to at most 100 organizations: the insert itself refuses the 101st", async () => {
    const u = await registerUser();
    for (let i = 0; i < 100; i++) {
      const id = crypto.randomUUID();
      await env.DB.prepare("INSERT INTO organizations (id, name, slug, created_at) VALUES (?, 'x', ?, ?)")
        .bind(id, `${uniqueSlug("m")}-${i}`, Date.now())
        .run();
      await addMember(id, u.user.id, "member");
    }
    expectError(await call("POST", "/orgs", { token: u.access_token, body: { name: "One more", slug: uniqueSlug() } }), 409, "too_many_organizations");
    expect(await count("SELECT count(*) AS n FROM memberships WHERE user_id = ?", u.user.id)).toBe(100);
  });

  it("a non-member gets 404 for an organization, as for one that does not exist", async () => {
    const { orgId } = await team();
    const stranger = await registerUser();
    for (const [method, path, body] of [
      ["GET", `/orgs/${orgId}`],
      ["PATCH", `/orgs/${orgId}`, { name: "Mine" }],
      ["GET", `/orgs/${orgId}/members`],
      ["GET", "/orgs/no-such-org"],
    ] as const) {
      expectError(await call(method, path, { token: stranger.access_token, body }), 404, "not_found");
    }
  });

  it("needs a bearer token", async () => {
    expectError(await call("GET", "/orgs"), 401, "invalid_token");
  });
});

describe("renaming", () => {
  it("owners and admins rename and re-slug; a member gets 403; a taken slug 409", async () => {
    const { owner, admin, member, orgId } = await team();
    expectError(await call("PATCH", `/orgs/${orgId}`, { token: member.access_token, body: { name: "Nope" } }), 403, "forbidden");
    const renamed = await call("PATCH", `/orgs/${orgId}`, { token: admin.access_token, body: { name: "Renamed" } });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body.organization).toMatchObject({ name: "Renamed", role: "admin" });
    const taken = uniqueSlug();
    await createOrg(owner.access_token, taken);
    expectError(await call("PATCH", `/orgs/${orgId}`, { token: owner.access_token, body: { slug: taken.toUpperCase() } }), 409, "org_slug_taken");
    const fresh = uniqueSlug();
    expect((await call("PATCH", `/orgs/${orgId}`, { token: owner.access_token, body: { slug: fresh } })).body.organization.slug).toBe(fresh);
    expectError(await call("PATCH", `/orgs/${orgId}`, { token: owner.access_token, body: {} }), 400, "validation_failed");
  });
});

describe("members and roles", () => {
  it("lists members a page at a time, newest first, to any member", async () => {
    const { owner, admin, member, orgId } = await team();
    const first = await call("GET", `/orgs/${orgId}/members?limit=2`, { token: member.access_token });
    expect(first.status, first.text).toBe(200);
    expect(first.body.members.map((m: { user_id: string }) => m.user_id)).toEqual([member.user.id, admin.user.id]);
    expect(first.body.members[0]).toMatchObject({ username: member.user.username, role: "member" });
    const second = await call("GET", `/orgs/${orgId}/members?limit=2&cursor=${first.body.next_cursor}`, { token: member.access_token });
    expect(second.body.members.map((m: { user_id: string; role: string }) => [m.user_id, m.role])).toEqual([[owner.user.id, "owner"]]);
    expect(second.body.next_cursor).toBeNull();
    expectError(await call("GET", `/orgs/${orgId}/members?cursor=nonsense`, { token: member.access_token }), 400, "validation_failed");
  });

  it("a member can neither change roles nor remove anyone", async () => {
    const { admin, member, orgId } = await team();
    expectError(await setRole(member.access_token, orgId, admin.user.id, "member"), 403, "forbidden");
    expectError(await remove(member.access_token, orgId, admin.user.id), 403, "forbidden");
    expect(await roleIn(orgId, admin.user.id)).toBe("admin");
  });

  it("an admin manages members but cannot demote or remove an owner, nor make one", async () => {
    const { owner, admin, member, orgId } = await team();
    expectError(await setRole(admin.access_token, orgId, owner.user.id, "member"), 403, "forbidden");
    expectError(await remove(admin.access_token, orgId, owner.user.id), 403, "forbidden");
    expectError(await setRole(admin.access_token, orgId, member.user.id, "owner"), 403, "forbidden");
    expect(await roleIn(orgId, owner.user.id)).toBe("owner");
    expect(await roleIn(orgId, member.user.id)).toBe("member");
    const promoted = await setRole(admin.access_token, orgId, member.user.id, "admin");
    expect(promoted.status, promoted.text).toBe(200);
    expect(promoted.body.member).toMatchObject({ user_id: member.user.id, role: "admin" });
    expect((await remove(admin.access_token, orgId, member.user.id)).status).toBe(200);
    expect(await roleIn(orgId, member.user.id)).toBeUndefined();
  });

  it("an unknown role is validation_failed; an unknown member 404", async () => {
    const { owner, member, orgId } = await team();
    expectError(await setRole(owner.access_token, orgId, member.user.id, "emperor"), 400, "validation_failed");
    expectError(await setRole(owner.access_token, orgId, "no-such-user", "admin"), 404, "not_found");
    expectError(await remove(owner.access_token, orgId, "no-such-user"), 404, "not_found");
  });

  it("a role ORG_ROLES defines can be given; one it does not is refused", async () => {
    const { owner, member, orgId } = await team();
    const bindings = { ORG_ROLES: '{"billing": ["billing:read"]}' } as Partial<Env>;
    const res = await call("PATCH", `/orgs/${orgId}/members/${member.user.id}`, { token: owner.access_token, body: { role: "billing" }, bindings });
    expect(res.status, res.text).toBe(200);
    expect(await roleIn(orgId, member.user.id)).toBe("billing");
    expectError(await setRole(owner.access_token, orgId, member.user.id, "billing"), 400, "validation_failed"); // not in this deployment's roles
  });

  it("the last owner cannot be demoted, leave or be removed; with a second owner they can", async () => {
    const { owner, admin, orgId } = await team();
    expectError(await setRole(owner.access_token, orgId, owner.user.id, "admin"), 409, "last_owner");
    expectError(await remove(owner.access_token, orgId, owner.user.id), 409, "last_owner");
    expect(await roleIn(orgId, owner.user.id)).toBe("owner");
    expect((await setRole(owner.access_token, orgId, admin.user.id, "owner")).status).toBe(200);
    const left = await remove(owner.access_token, orgId, owner.user.id);
    expect(left.status, left.text).toBe(200);
    expect(left.body.message).toMatch(/left/);
    expect(await roleIn(orgId, owner.user.id)).toBeUndefined();
    expectError(await remove(admin.access_token, orgId, admin.user.id), 409, "last_owner");
  });

  it("two owners demoting themselves at once, or each other: exactly one owner remains", async () => {
    for (const each of [true, false]) {
      const a = await registerUser();
      const b = await registerUser();
      const orgId = await createOrg(a.access_token);
      await addMember(orgId, b.user.id, "owner");
      const [ra, rb] = await Promise.all([
        setRole(a.access_token, orgId, each ? a.user.id : b.user.id, "admin"),
        setRole(b.access_token, orgId, each ? b.user.id : a.user.id, "admin"),
      ]);
      expect([ra.status, rb.status].sort()).toEqual([200, each ? 409 : 403]);
      expect(await count("SELECT count(*) AS n FROM memberships WHERE org_id = ? AND role = 'owner'", orgId)).toBe(1);
    }
  });

  it("a member leaves on their own; their sessions acting for the organization lose it in the same batch", async () => {
    const { member, orgId } = await team();
    const token = await switchOrg(member.access_token, orgId); // the switch revoked the old token
    const sid = () => env.DB.prepare("SELECT org_id FROM sessions WHERE user_id = ?").bind(member.user.id).first<{ org_id: string | null }>();
    expect((await sid())?.org_id).toBe(orgId);
    const left = await remove(token, orgId, member.user.id);
    expect(left.status, left.text).toBe(200);
    expect((await sid())?.org_id).toBeNull();
  });

  it("audits each change with the actor, the organization and the member", async () => {
    const { owner, member, orgId } = await team();
    await setRole(owner.access_token, orgId, member.user.id, "admin");
    await remove(owner.access_token, orgId, member.user.id);
    const rows = await env.DB.prepare("SELECT event, user_id, detail FROM audit_events WHERE detail LIKE ? ORDER BY id").bind(`%${orgId}%`).all<{
      event: string;
      user_id: string;
      detail: string;
    }>();
    const events = rows.results.map((r) => ({ event: r.event, user_id: r.user_id, ...JSON.parse(r.detail) }));
    expect(events.map((e) => e.event)).toEqual(["org_created", "member_role_changed", "member_removed"]);
    expect(events[1]).toMatchObject({ user_id: owner.user.id, org_id: orgId, target_user_id: member.user.id, from: "member", to: "admin" });
    expect(events[2]).toMatchObject({ user_id: owner.user.id, target_user_id: member.user.id });
  });
});

describe("ownership and deletion (step-up manage_organization)", () => {
  it("transfer: refused without the password, or to a non-member; with it the target owns and the caller is admin", async () => {
    const { owner, admin, member, orgId } = await team();
    const stranger = await registerUser();
    const transfer = (token: string, body: Record<string, unknown>) => call("POST", `/orgs/${orgId}/transfer`, { token, body });
    expectError(await transfer(owner.access_token, { user_id: member.user.id }), 400, "validation_failed");
    expectError(await transfer(owner.access_token, { user_id: member.user.id, current_password: "wrong password 1" }), 401, "invalid_credentials");
    expectError(await transfer(admin.access_token, { user_id: member.user.id, current_password: PASSWORD }), 403, "forbidden");
    expectError(await transfer(owner.access_token, { user_id: stranger.user.id, current_password: PASSWORD }), 404, "not_found");
    expectError(await transfer(owner.access_token, { user_id: owner.user.id, current_password: PASSWORD }), 400, "validation_failed");
    expect(await roleIn(orgId, member.user.id)).toBe("member");
    const res = await transfer(owner.access_token, { user_id: member.user.id, current_password: PASSWORD });
    expect(res.status, res.text).toBe(200);
    expect(res.body.organization.role).toBe("admin");
    expect([await roleIn(orgId, member.user.id), await roleIn(orgId, owner.user.id)]).toEqual(["owner", "admin"]);
  });

  it("delete: a non-owner gets 403, no password 400; the owner's delete takes memberships, invitations and keys with it", async () => {
    const { owner, admin, orgId } = await team();
    await env.DB.prepare(
      "INSERT INTO invitations (id, org_id, email, role, token_hash, created_at, expires_at) VALUES (?, ?, 'x@example.com', 'member', ?, ?, ?)",
    )
      .bind(crypto.randomUUID(), orgId, crypto.randomUUID(), Date.now(), Date.now() + 60_000)
      .run();
    await env.DB.prepare("INSERT INTO api_keys (id, key_hash, start, name, org_id, created_by, scopes, created_at) VALUES (?, ?, 'eak_', 'k', ?, ?, '[]', ?)")
      .bind(crypto.randomUUID(), crypto.randomUUID(), orgId, owner.user.id, Date.now())
      .run();
    expectError(await call("DELETE", `/orgs/${orgId}`, { token: admin.access_token, body: { current_password: PASSWORD } }), 403, "forbidden");
    expectError(await call("DELETE", `/orgs/${orgId}`, { token: owner.access_token, body: {} }), 400, "validation_failed");
    expect(await count("SELECT count(*) AS n FROM organizations WHERE id = ?", orgId)).toBe(1);
    const res = await call("DELETE", `/orgs/${orgId}`, { token: owner.access_token, body: { current_password: PASSWORD } });
    expect(res.status, res.text).toBe(200);
    for (const table of ["organizations WHERE id", "memberships WHERE org_id", "invitations WHERE org_id", "api_keys WHERE org_id"]) {
      expect(await count(`SELECT count(*) AS n FROM ${table} = ?`, orgId), table).toBe(0);
    }
    expectError(await call("GET", `/orgs/${orgId}`, { token: owner.access_token }), 404, "not_found");
  });
});

describe("an owner's account deletion", () => {
  it("the only owner of an organization with other members cannot delete their account (409 last_owner); with another owner, or alone in it, they can", async () => {
    const { owner, admin, orgId } = await team();
    const deleteMe = (token: string) => call("DELETE", "/me", { token, body: { current_password: PASSWORD } });
    expectError(await deleteMe(owner.access_token), 409, "last_owner");
    expect(await roleIn(orgId, owner.user.id)).toBe("owner");
    expect((await setRole(owner.access_token, orgId, admin.user.id, "owner")).status).toBe(200);
    expect((await deleteMe(owner.access_token)).status).toBe(200);
    expect(await roleIn(orgId, admin.user.id)).toBe("owner");
    const alone = await registerUser();
    await createOrg(alone.access_token);
    expect((await deleteMe(alone.access_token)).status).toBe(200);
  });
});

describe("admins see organizations", () => {
  it("GET /admin/organizations lists them newest first with member counts, a page at a time; others get 403", async () => {
    const { owner, orgId } = await team();
    const newer = await createOrg(owner.access_token);
    const admin = await adminToken();
    const first = await call("GET", "/admin/organizations?limit=1", { token: admin });
    expect(first.status, first.text).toBe(200);
    expect(first.body.organizations[0]).toMatchObject({ id: newer, members: 1 });
    const second = await call("GET", `/admin/organizations?limit=1&cursor=${first.body.next_cursor}`, { token: admin });
    expect(second.body.organizations[0]).toMatchObject({ id: orgId, members: 3 });
    expectError(await call("GET", "/admin/organizations", { token: owner.access_token }), 403, "forbidden");
  });
});
