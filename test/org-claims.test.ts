import { env } from "cloudflare:workers";
import { createLocalJWKSet, type JSONWebKeySet, type JWTPayload, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { call, expectError, kvPutFailsOnce, PASSWORD, refreshWith, registerUser } from "./helpers";
import { addMember, createOrg, switchOrg } from "./orgs";

/**
 * The active organization in the token (docs/organizations.md): what a resource server reads after a
 * switch, and how long what it reads may be stale (ACCESS_TOKEN_TTL: a change shows at the next refresh).
 */

/** Verifies an access token as a resource server does: the JWKS the API publishes, issuer, audience, typ. */
async function asResourceServer(token: string): Promise<JWTPayload & Record<string, unknown>> {
  const jwks = (await call<JSONWebKeySet>("GET", "/.well-known/jwks.json")).body; // createRemoteJWKSet cannot fetch in-process
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: env.ISSUER, audience: env.AUDIENCE, typ: "at+jwt", algorithms: ["ES256"] });
  return payload;
}

const ORG_CLAIMS = ["org_id", "org_slug", "org_role", "org_permissions"];

/** A signed-in member (role `role`) of a fresh organization owned by another user. */
async function memberOf(role = "member") {
  const owner = await registerUser();
  const user = await registerUser();
  const slug = `claims-${crypto.randomUUID().slice(0, 8)}`;
  const orgId = await createOrg(owner.access_token, slug);
  await addMember(orgId, user.user.id, role);
  return { owner, user, orgId, slug };
}

describe("the switch", () => {
  it("the new access token carries the organization, which a resource server reads with jose", async () => {
    const { user, orgId, slug } = await memberOf("admin");
    const res = await call("POST", "/orgs/switch", { token: user.access_token, body: { org_id: orgId } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ token_type: "Bearer", organization: { id: orgId, slug, role: "admin" } });
    expect(res.body.expires_in).toBeLessThanOrEqual(Number(env.ACCESS_TOKEN_TTL));
    const claims = await asResourceServer(res.body.access_token);
    expect(claims).toMatchObject({ sub: user.user.id, org_id: orgId, org_slug: slug, org_role: "admin" });
    expect(claims.org_permissions).toEqual(expect.arrayContaining(["org:read", "members:read", "org:update", "members:manage"]));
    expect(claims.org_permissions).not.toContain("org:delete");
    expect(res.body.refresh_token).toBeUndefined(); // the session keeps its refresh token
    const discovery = await call("GET", "/.well-known/openid-configuration");
    expect(discovery.body.claims_supported).toEqual(expect.arrayContaining(ORG_CLAIMS));
  });

  it("never outlives the token presented: chained switches cannot keep a stolen access token alive", async () => {
    const { user, orgId } = await memberOf();
    const presented = await asResourceServer(user.access_token);
    await new Promise((r) => setTimeout(r, 1100)); // a second later: an uncapped switch would end later than the token presented
    const first = await switchOrg(user.access_token, orgId);
    const second = await switchOrg(first, null);
    for (const token of [first, second]) expect((await asResourceServer(token)).exp).toBeLessThanOrEqual(presented.exp!);
  });

  it("the presented access token is refused by the API afterwards; the new one is accepted", async () => {
    const { user, orgId } = await memberOf();
    const token = await switchOrg(user.access_token, orgId);
    expectError(await call("GET", "/protected", { token: user.access_token }), 401, "invalid_token");
    expect((await call("GET", "/protected", { token })).status).toBe(200);
    const { keys } = await env.REVOKED.list({ prefix: "jti:" });
    expect(keys.map((k) => k.name)).toContain(`jti:${(await asResourceServer(user.access_token)).jti}`);
  });

  it("a switch whose KV write fails answers 503, and sending it again completes it", async () => {
    const { user, orgId } = await memberOf();
    const failed = await call("POST", "/orgs/switch", { token: user.access_token, body: { org_id: orgId }, bindings: { REVOKED: kvPutFailsOnce() } });
    expectError(failed, 503, "service_unavailable");
    expect((await call("GET", "/protected", { token: user.access_token })).status).toBe(200); // not revoked yet
    const again = await call("POST", "/orgs/switch", { token: user.access_token, body: { org_id: orgId } });
    expect(again.status, again.text).toBe(200);
    expectError(await call("GET", "/protected", { token: user.access_token }), 401, "invalid_token");
  });

  it("one token switches once: a second switch elsewhere with it is refused even before KV has the revocation", async () => {
    const { user, orgId } = await memberOf();
    // The first switch lands in D1 but its KV write fails: the token is not yet revoked in KV.
    const failed = await call("POST", "/orgs/switch", { token: user.access_token, body: { org_id: orgId }, bindings: { REVOKED: kvPutFailsOnce() } });
    expectError(failed, 503, "service_unavailable");
    expectError(await call("POST", "/orgs/switch", { token: user.access_token, body: { org_id: null } }), 401, "invalid_token");
    // The same switch sent again is still answered (the retry), and the session holds its organization.
    const again = await call<{ access_token: string }>("POST", "/orgs/switch", { token: user.access_token, body: { org_id: orgId } });
    expect(again.status, again.text).toBe(200);
    expect((await asResourceServer(again.body.access_token)).org_id).toBe(orgId);
    const refreshed = await refreshWith(user.refresh_token);
    expect((await asResourceServer(refreshed.body.access_token)).org_id).toBe(orgId);
  });

  it("two switches at once with one token to different places: one wins, the other is refused", async () => {
    for (let i = 0; i < 3; i++) {
      const { user, orgId } = await memberOf();
      const token = await switchOrg(user.access_token, orgId);
      const answers = await Promise.all([orgId, null].map((org_id) => call("POST", "/orgs/switch", { token, body: { org_id } })));
      expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
    }
  });

  it("to an organization the caller is not in, or none that exists: 404, and the session keeps what it had", async () => {
    const { orgId } = await memberOf();
    const stranger = await registerUser();
    const mine = await createOrg(stranger.access_token);
    const token = await switchOrg(stranger.access_token, mine);
    expectError(await call("POST", "/orgs/switch", { token, body: { org_id: orgId } }), 404, "not_found");
    expectError(await call("POST", "/orgs/switch", { token, body: { org_id: "no-such-org" } }), 404, "not_found");
    expect((await call("GET", "/protected", { token })).status).toBe(200); // a refused switch revokes nothing
    const next = await refreshWith(stranger.refresh_token);
    expect((await asResourceServer(next.body.access_token)).org_id).toBe(mine);
  });

  it("refreshes after a switch keep the organization; a switch to null drops it", async () => {
    const { user, orgId } = await memberOf();
    await switchOrg(user.access_token, orgId);
    const first = await refreshWith(user.refresh_token);
    expect(first.status, first.text).toBe(200);
    expect((await asResourceServer(first.body.access_token)).org_id).toBe(orgId);
    const second = await refreshWith(first.body.refresh_token);
    expect((await asResourceServer(second.body.access_token)).org_id).toBe(orgId);
    const none = await call("POST", "/orgs/switch", { token: second.body.access_token, body: { org_id: null } });
    expect(none.status, none.text).toBe(200);
    expect(none.body.organization).toBeNull();
    const claims = await asResourceServer(none.body.access_token);
    for (const claim of ORG_CLAIMS) expect(claims[claim]).toBeUndefined();
    expect(Object.keys(await asResourceServer((await refreshWith(second.body.refresh_token)).body.access_token))).not.toContain("org_id");
  });

  it("only the session that switched acts for the organization: another session of the user does not", async () => {
    const { user, orgId } = await memberOf();
    const other = await call("POST", "/login", { body: { username: user.input.username, password: PASSWORD } });
    await switchOrg(user.access_token, orgId);
    const refreshed = await refreshWith(other.body.refresh_token);
    expect((await asResourceServer(refreshed.body.access_token)).org_id).toBeUndefined();
  });

  it("a role ORG_ROLES defines yields its permissions", async () => {
    const bindings = { ORG_ROLES: '{"billing": ["billing:read", "billing:manage"]}' } as Partial<Env>;
    const { user, owner, orgId } = await memberOf("billing");
    const res = await call("POST", "/orgs/switch", { token: user.access_token, body: { org_id: orgId }, bindings });
    expect(res.status, res.text).toBe(200);
    const claims = await asResourceServer(res.body.access_token);
    expect(claims.org_role).toBe("billing");
    expect([...(claims.org_permissions as string[])].sort()).toEqual(["billing:manage", "billing:read", "members:read", "org:read"]);
    // Owners and admins hold every permission the deployment's roles name.
    const ownerSwitch = await call("POST", "/orgs/switch", { token: owner.access_token, body: { org_id: orgId }, bindings });
    expect((await asResourceServer(ownerSwitch.body.access_token)).org_permissions).toEqual(expect.arrayContaining(["billing:read", "org:delete"]));
  });
});

describe("staleness: a change shows at the next refresh, at most ACCESS_TOKEN_TTL later", () => {
  it("a role change is not in the old token, which stays valid until it expires; the next refresh carries it", async () => {
    const { owner, user, orgId } = await memberOf();
    const old = await switchOrg(user.access_token, orgId);
    const ownerToken = await switchOrg(owner.access_token, orgId);
    const changed = await call("PATCH", `/orgs/${orgId}/members/${user.user.id}`, { token: ownerToken, body: { role: "admin" } });
    expect(changed.status, changed.text).toBe(200);
    const before = await asResourceServer(old);
    expect(before.org_role).toBe("member"); // stale, by design...
    expect(before.exp! - before.iat!).toBe(Number(env.ACCESS_TOKEN_TTL)); // ...for at most the token's lifetime
    expect((await call("GET", "/protected", { token: old })).status).toBe(200);
    const next = await refreshWith(user.refresh_token);
    expect(next.status, next.text).toBe(200);
    expect(await asResourceServer(next.body.access_token)).toMatchObject({ org_id: orgId, org_role: "admin" });
  });

  it("a removed member's next refresh carries no organization, and their session no longer names it", async () => {
    const { owner, user, orgId } = await memberOf();
    await switchOrg(user.access_token, orgId);
    const removed = await call("DELETE", `/orgs/${orgId}/members/${user.user.id}`, { token: await switchOrg(owner.access_token, orgId) });
    expect(removed.status, removed.text).toBe(200);
    const next = await refreshWith(user.refresh_token);
    expect(next.status, next.text).toBe(200);
    const claims = await asResourceServer(next.body.access_token);
    for (const claim of ORG_CLAIMS) expect(claims[claim]).toBeUndefined();
    // Invited back later, they do not find it active again: the removal cleared the session's choice.
    await addMember(orgId, user.user.id);
    expect((await asResourceServer((await refreshWith(next.body.refresh_token)).body.access_token)).org_id).toBeUndefined();
  });

  it("a deleted organization's claims die at the next refresh", async () => {
    const { owner, user, orgId } = await memberOf();
    await switchOrg(user.access_token, orgId);
    const ownerToken = await switchOrg(owner.access_token, orgId);
    expect((await call("DELETE", `/orgs/${orgId}`, { token: ownerToken, body: { current_password: PASSWORD } })).status).toBe(200);
    for (const refreshToken of [user.refresh_token, owner.refresh_token]) {
      const next = await refreshWith(refreshToken);
      expect(next.status, next.text).toBe(200);
      expect((await asResourceServer(next.body.access_token)).org_id).toBeUndefined();
    }
  });
});
