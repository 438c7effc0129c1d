import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { AuthError, createAuthClient, exchangeApiKey, invitationToken } from "../client";
import worker from "../src/index";
import { call, capturingQueue, deliverJobs, expectDocumented, PASSWORD, randomIp, type SentMail, uniqueName } from "./helpers";

/**
 * The typed client's organizations, invitations, switch and claims, and API keys (client/orgs.ts,
 * client/keys.ts) against the real worker: every answer checked against /openapi.json, mail caught
 * as it leaves the queue, and each token the client holds verified as a backend would (jose, JWKS).
 */

/** Mail the worker sent, from any client of this file. */
const sent: SentMail[] = [];
const EMAIL = {
  send: async (m: SentMail) => {
    sent.push(m);
    return { messageId: `m${sent.length}` };
  },
} as unknown as SendEmail;

/** The worker's fetch as the client's: one address per client, its queued mail delivered, every answer documented. */
function viaWorker() {
  const ip = randomIp();
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    req.headers.set("cf-connecting-ip", ip);
    const ctx = createExecutionContext();
    const queue = capturingQueue();
    const res = await worker.fetch(req, { ...env, EMAIL, MAIL_QUEUE: queue.MAIL_QUEUE }, ctx);
    await waitOnExecutionContext(ctx);
    if (queue.jobs.length) await deliverJobs(queue.jobs, { EMAIL });
    const text = await res.clone().text();
    await expectDocumented(req.method, new URL(req.url).pathname, res, text ? JSON.parse(text) : undefined);
    return res;
  }) as typeof fetch;
}

async function person(prefix = "orgs") {
  const client = createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker(), cookie: false });
  const username = uniqueName(prefix);
  const email = `${username}@example.com`.toLowerCase();
  const user = await client.register({ username, email, password: PASSWORD });
  return { client, user, email };
}
type Person = Awaited<ReturnType<typeof person>>;

/** The newest link for `action` mailed to `to`, e.g. http://localhost:5173/#accept-invitation=<token>. */
function mailedLink(to: string, action: string) {
  const links = sent.filter((m) => m.to === to).map((m) => new RegExp(`(http\\S+#${action}=[A-Za-z0-9_-]+)`).exec(m.text)?.[1]);
  const link = links.filter(Boolean).at(-1);
  expect(link, `a ${action} link mailed to ${to}`).toBeTruthy();
  return link!;
}

/** Proves the address as following the mailed verification link does. */
async function verified(p: Person) {
  const link = mailedLink(p.email, "verify-email");
  await p.client.verifyEmail(link.slice(link.indexOf("#verify-email=") + "#verify-email=".length));
  return p;
}

/** What a backend reads from a token: verified against the API's JWKS (issuer, audience, type pinned). */
async function backendReads(token: string) {
  const jwks = (await call<JSONWebKeySet>("GET", "/.well-known/jwks.json")).body;
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: env.ISSUER, audience: env.AUDIENCE, typ: "at+jwt" });
  return payload;
}

const slugOf = (prefix: string) => uniqueName(prefix).toLowerCase().replaceAll("_", "-");
const refused = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable("no refusal"),
    (err: unknown) => (expect(err).toBeInstanceOf(AuthError), err as AuthError),
  );

describe("the typed client's organizations", () => {
  it("creates, lists, reads and renames one; the switch takes a token that carries it, a backend reads it; null clears it", async () => {
    const { client, user } = await person();
    const slug = slugOf("acme");
    const org = await client.createOrganization({ name: "Acme", slug });
    expect(org).toMatchObject({ name: "Acme", slug, role: "owner" });
    expect(await client.organizations()).toEqual([org]);
    expect(await client.getOrganization(org.id)).toEqual(org);
    expect(await client.updateOrganization(org.id, { name: "Acme Inc" })).toMatchObject({ id: org.id, name: "Acme Inc", slug });
    expect(client.activeOrganization()).toBeNull(); // creating does not switch

    const before = (await client.accessToken())!;
    const switched = await client.switchOrganization(org.id);
    expect(switched).toMatchObject({ id: org.id, slug, role: "owner" });
    const token = (await client.accessToken())!;
    expect(token).not.toBe(before);
    const claims = await backendReads(token);
    expect(claims).toMatchObject({ sub: user.id, org_id: org.id, org_slug: slug, org_role: "owner" });
    expect(client.activeOrganization()).toEqual({ id: org.id, slug, role: "owner", permissions: claims.org_permissions });
    expect(client.activeOrganization()!.permissions).toEqual(expect.arrayContaining(["org:delete", "members:invite", "keys:manage"]));
    // The token held before the switch is revoked: one active organization per session.
    expect((await call("GET", "/me", { token: before })).status).toBe(401);

    // A refresh keeps the organization (a property of the session).
    await client.resume();
    expect((await client.accessToken()) === token).toBe(false);
    expect(client.activeOrganization()?.id).toBe(org.id);
    await client.logout();
    expect(client.activeOrganization()).toBeNull(); // signed out: no token, no claims
  });

  it("switching to null takes a token without the claims; an organization the caller is not in is not_found", async () => {
    const { client } = await person();
    const mine = await client.createOrganization({ name: "Mine", slug: slugOf("mine") });
    const other = await (await person()).client.createOrganization({ name: "Theirs", slug: slugOf("theirs") });
    await client.switchOrganization(mine.id);
    expect(client.activeOrganization()?.id).toBe(mine.id);
    expect(await client.switchOrganization(null)).toBeNull();
    expect(client.activeOrganization()).toBeNull();
    expect((await backendReads((await client.accessToken())!)).org_id).toBeUndefined();
    expect(await refused(client.switchOrganization(other.id))).toMatchObject({ code: "not_found", status: 404 });
    expect(await refused(client.getOrganization(other.id))).toMatchObject({ code: "not_found", status: 404 });
    expect(await refused(client.createOrganization({ name: "Again", slug: mine.slug }))).toMatchObject({ code: "org_slug_taken", status: 409 });
  });

  it("invites by mail; the invitee accepts the link's token once, with the verified invited address; pending ones list and revoke", async () => {
    const owner = await person("owner");
    const org = await owner.client.createOrganization({ name: "Invites", slug: slugOf("inv") });
    const invitee = await person("invitee");
    const invitation = await owner.client.invite(org.id, { email: invitee.email, role: "admin" });
    expect(invitation).toMatchObject({ org_id: org.id, email: invitee.email, role: "admin" });
    expect(await owner.client.invitations(org.id)).toEqual([invitation]);
    const link = mailedLink(invitee.email, "accept-invitation");
    expect(link.startsWith(env.APP_URL)).toBe(true);
    const token = invitationToken(link)!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);

    // Not verified yet: refused, and the invitation waits.
    expect(await refused(invitee.client.acceptInvitation(token))).toMatchObject({ code: "invitation_wrong_account", status: 403 });
    // Another account, verified, is not the invited address.
    const stranger = await verified(await person("stranger"));
    expect(await refused(stranger.client.acceptInvitation(token))).toMatchObject({ code: "invitation_wrong_account", status: 403 });
    await verified(invitee);
    const joined = await invitee.client.acceptInvitation(token);
    expect(joined).toMatchObject({ id: org.id, role: "admin" });
    expect(await invitee.client.organizations()).toEqual([joined]);
    expect(await owner.client.invitations(org.id)).toEqual([]);
    // Single use.
    expect(await refused(invitee.client.acceptInvitation(token))).toMatchObject({ code: "invalid_link", status: 400 });

    // Revoked, a pending invitation's link is dead.
    const later = await person("later");
    const second = await owner.client.invite(org.id, { email: later.email, role: "member" });
    const laterToken = invitationToken(mailedLink(later.email, "accept-invitation"))!;
    await owner.client.revokeInvitation(org.id, second.id);
    expect(await owner.client.invitations(org.id)).toEqual([]);
    await verified(later);
    expect(await refused(later.client.acceptInvitation(laterToken))).toMatchObject({ code: "invalid_link", status: 400 });
  });
});

/** An owner, and `n` members who joined by invitation (verified, accepted). */
async function orgWithMembers(n: number) {
  const owner = await person("owner");
  const org = await owner.client.createOrganization({ name: "Team", slug: slugOf("team") });
  const members: Person[] = [];
  for (let i = 0; i < n; i++) {
    const m = await verified(await person("member"));
    await owner.client.invite(org.id, { email: m.email, role: "member" });
    await m.client.acceptInvitation(invitationToken(mailedLink(m.email, "accept-invitation"))!);
    members.push(m);
  }
  return { owner, org, members };
}

describe("the typed client's members", () => {
  it("pages the members; a role change reaches the member's token at its next refresh, not before", async () => {
    const { owner, org, members } = await orgWithMembers(2);
    const first = await owner.client.members(org.id, { limit: 2 });
    expect(first.members).toHaveLength(2);
    expect(first.next_cursor).toBeTruthy();
    const rest = await owner.client.members(org.id, { limit: 2, cursor: first.next_cursor! });
    expect(rest.next_cursor).toBeNull();
    const everyone = [...first.members, ...rest.members];
    expect(everyone.map((m) => m.user_id).sort()).toEqual([owner.user.id, ...members.map((m) => m.user.id)].sort());

    const bob = members[0]!;
    await bob.client.switchOrganization(org.id);
    const held = (await bob.client.accessToken())!;
    expect(bob.client.activeOrganization()?.role).toBe("member");
    expect(await owner.client.changeMemberRole(org.id, bob.user.id, "admin")).toMatchObject({ user_id: bob.user.id, role: "admin" });
    // The token bob holds says member until it is refreshed (the bound: its lifetime).
    expect(bob.client.activeOrganization()?.role).toBe("member");
    expect((await backendReads(held)).org_role).toBe("member");
    // Bob's next refresh (resume() refreshes now) carries the new role.
    await bob.client.resume();
    expect(bob.client.activeOrganization()?.role).toBe("admin");
    expect(await backendReads((await bob.client.accessToken())!)).toMatchObject({ org_id: org.id, org_role: "admin" });
    // Never above the actor's rank: an admin cannot make an owner.
    expect(await refused(bob.client.changeMemberRole(org.id, members[1]!.user.id, "owner"))).toMatchObject({ code: "forbidden", status: 403 });
  });

  it("removes a member, who refreshes out of the organization; the last owner cannot leave; a member leaves", async () => {
    const { owner, org, members } = await orgWithMembers(2);
    const [carol, dave] = members as [Person, Person];
    await carol.client.switchOrganization(org.id);
    await owner.client.removeMember(org.id, carol.user.id);
    // Carol's token says she acts for it until its next refresh, which carries no organization.
    expect(carol.client.activeOrganization()?.id).toBe(org.id);
    await carol.client.resume();
    expect(carol.client.activeOrganization()).toBeNull();
    expect((await backendReads((await carol.client.accessToken())!)).org_id).toBeUndefined();
    expect(await refused(carol.client.getOrganization(org.id))).toMatchObject({ code: "not_found" });
    expect((await owner.client.members(org.id)).members.map((m) => m.user_id)).not.toContain(carol.user.id);

    expect(await refused(owner.client.leaveOrganization(org.id))).toMatchObject({ code: "last_owner", status: 409 });
    // Leaving the active organization refreshes at once: the claims are gone from the token the client holds.
    await dave.client.switchOrganization(org.id);
    await dave.client.leaveOrganization(org.id);
    expect(dave.client.activeOrganization()).toBeNull();
    expect((await backendReads((await dave.client.accessToken())!)).org_id).toBeUndefined();
    expect(await dave.client.organizations()).toEqual([]);
  });

  it("hands ownership over and deletes, each behind the step-up", async () => {
    const { owner, org, members } = await orgWithMembers(1);
    const heir = members[0]!;
    await owner.client.switchOrganization(org.id);
    expect(await refused(owner.client.transferOrganization(org.id, heir.user.id, { current_password: "not it 12345" }))).toMatchObject({ status: 401 });
    expect(await owner.client.transferOrganization(org.id, heir.user.id, { current_password: PASSWORD })).toMatchObject({ id: org.id, role: "admin" });
    // The caller's own token follows at once (it was the active organization).
    expect(owner.client.activeOrganization()?.role).toBe("admin");
    expect(await refused(owner.client.deleteOrganization(org.id, { current_password: PASSWORD }))).toMatchObject({ code: "forbidden", status: 403 });

    await heir.client.switchOrganization(org.id);
    expect(await refused(heir.client.deleteOrganization(org.id, {}))).toMatchObject({ code: "validation_failed", status: 400 });
    expect(await refused(heir.client.deleteOrganization(org.id, { current_password: "not it 12345" }))).toMatchObject({
      code: "invalid_credentials",
      status: 401,
    });
    await heir.client.deleteOrganization(org.id, { current_password: PASSWORD });
    expect(heir.client.activeOrganization()).toBeNull();
    expect(await heir.client.organizations()).toEqual([]);
  });
});

describe("the typed client's API keys", () => {
  it("creates one (secret once), lists it without the secret; a script exchanges it for a token a backend accepts; revoked, it is refused", async () => {
    const { client, user } = await person("keys");
    const { key, secret } = await client.createApiKey({ name: "CI", scopes: ["user"], current_password: PASSWORD });
    expect(secret).toMatch(/^eak_[A-Za-z0-9]{46}$/);
    expect(key).toMatchObject({ name: "CI", scopes: ["user"], owner: { type: "user", id: user.id }, revoked_at: null });
    const listed = await client.apiKeys();
    expect(listed).toEqual([key]);
    expect(JSON.stringify(listed)).not.toContain(secret);

    const fetch = viaWorker();
    const exchanged = await exchangeApiKey("http://localhost", secret, { fetch });
    expect(exchanged).toMatchObject({ token_type: "Bearer", issued_token_type: "urn:ietf:params:oauth:token-type:access_token", scope: "user" });
    expect(await backendReads(exchanged.access_token)).toMatchObject({ sub: user.id, key_id: key.id, client_id: key.id, owner_type: "user", scope: "user" });
    // A narrower scope than the key's is refused as wider when it is not the key's.
    expect(await refused(exchangeApiKey("http://localhost", secret, { scope: "admin", fetch }))).toMatchObject({ code: "invalid_scope", status: 400 });
    // A typo: refused on its checksum.
    const typo = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    expect(await refused(exchangeApiKey("http://localhost", typo, { fetch }))).toMatchObject({ code: "invalid_grant", status: 400 });

    await client.revokeApiKey(key.id);
    expect(await refused(exchangeApiKey("http://localhost", secret, { fetch }))).toMatchObject({ code: "invalid_grant", status: 400 });
  });

  it("an organization's key, by its owner; scopes wider than the creator's are refused; without the step-up, refused", async () => {
    const { client } = await person("orgkeys");
    const org = await client.createOrganization({ name: "Keys", slug: slugOf("keys") });
    const created = await client.createApiKey({ name: "deploys", scopes: ["members:read"], org_id: org.id, current_password: PASSWORD });
    expect(created.key.owner).toEqual({ type: "organization", id: org.id });
    expect(await client.apiKeys(org.id)).toEqual([created.key]);
    expect(await client.apiKeys()).toEqual([]); // not the caller's own
    const claims = await backendReads((await exchangeApiKey("http://localhost", created.secret, { fetch: viaWorker() })).access_token);
    expect(claims).toMatchObject({ sub: org.id, owner_type: "organization", org_id: org.id, org_slug: org.slug });
    expect(await refused(client.createApiKey({ name: "wide", scopes: ["admin"], current_password: PASSWORD }))).toMatchObject({
      code: "scope_not_allowed",
      status: 403,
    });
    expect(await refused(client.createApiKey({ name: "no step-up", scopes: ["user"] }))).toMatchObject({ code: "validation_failed", status: 400 });
    expect(await refused(client.createApiKey({ name: "wrong", scopes: ["user"], current_password: "not it 12345" }))).toMatchObject({ status: 401 });
  });

  it("an unreachable token endpoint is a network_error; an answer without JSON is bad_response", async () => {
    const down = (async () => {
      throw new TypeError("connection refused");
    }) as unknown as typeof fetch;
    expect(await refused(exchangeApiKey("http://localhost", "eak_x", { fetch: down }))).toMatchObject({ code: "network_error", status: 0 });
    const html = (async () => new Response("<html>", { status: 502 })) as unknown as typeof fetch;
    expect(await refused(exchangeApiKey("http://localhost", "eak_x", { fetch: html }))).toMatchObject({ code: "bad_response", status: 502 });
  });
});

describe("invitationToken", () => {
  it("reads the token from a page URL's fragment, and nothing else", () => {
    expect(invitationToken("https://app.example/#accept-invitation=abc-_1")).toBe("abc-_1");
    expect(invitationToken("https://app.example/#x=1&accept-invitation=abc")).toBe("abc");
    expect(invitationToken("https://app.example/?accept-invitation=abc")).toBeNull();
    expect(invitationToken("https://app.example/#verify-email=abc")).toBeNull();
  });
});
