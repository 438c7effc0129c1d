import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { housekeeping } from "../src/cron";
import { call, countingD1, d1Usage, d1WriteBeforeBatch, expectError, login, mailbox, PASSWORD, uniqueName } from "./helpers";
import {
  accountWith,
  addMember,
  address,
  insertInvitation,
  insertOrganization,
  markVerified,
  membershipsOf,
  orgWith,
  setInvitationTime,
} from "./invitations-setup";

const DAY = 86_400_000;
const noEdgeLimit = { MAIL_LIMITER: { limit: async () => ({ success: true }) } as unknown as RateLimit };

type Box = ReturnType<typeof mailbox>;
const invite = (box: Box, token: string, orgId: string, email: string, role = "member") =>
  box.send("POST", `/orgs/${orgId}/invitations`, { token, body: { email, role } });
const accept = (token: string, link: string) => call("POST", "/invitations/accept", { token, body: { token: link } });
const pendingOf = (token: string, orgId: string) => call("GET", `/orgs/${orgId}/invitations`, { token });
const invitationRow = (id: string) => env.DB.prepare("SELECT * FROM invitations WHERE id = ?").bind(id).first<Record<string, unknown>>();

/** An owner's organization and a mailed invitation to a fresh address: the link's token and the invitation. */
async function invited(role = "member", email = address()) {
  const box = mailbox();
  const { orgId, actor } = await orgWith("owner");
  const res = await invite(box, actor.token, orgId, email, role);
  expect(res.status, res.text).toBe(201);
  return { box, orgId, owner: actor, email, link: box.link(email, "accept-invitation"), invitation: res.body.invitation };
}

describe("inviting", () => {
  it("mails a link naming the organization and the inviter; stores only the token's hash; the invited account accepts once", async () => {
    const { box, orgId, owner, email, link, invitation } = await invited("admin");
    expect(invitation).toMatchObject({ org_id: orgId, email, role: "admin", invited_by: owner.id });
    expect(Date.parse(invitation.expires_at) - Date.parse(invitation.created_at)).toBe(Number(env.INVITATION_TTL ?? 604_800) * 1000);
    const mail = box.sent.find((m) => m.to === email)!;
    expect(mail.subject).toContain("Acme Inc");
    expect(mail.text).toContain(owner.user.username);
    expect(mail.text).toContain(`${env.APP_URL}#accept-invitation=${link}`);
    expect(mail.html).toContain(`#accept-invitation=${link}`);
    // D1 holds the hash, never the token.
    const row = (await invitationRow(invitation.id))!;
    expect(JSON.stringify(row)).not.toContain(link);
    expect(row.token_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const invitee = await accountWith(email);
    const res = await accept(invitee.token, link);
    expect(res.status, res.text).toBe(200);
    expect(res.body.organization).toMatchObject({ id: orgId, name: "Acme Inc", role: "admin" });
    expect(await membershipsOf(orgId, invitee.id)).toBe(1);
    const role = await env.DB.prepare("SELECT role FROM memberships WHERE org_id = ? AND user_id = ?").bind(orgId, invitee.id).first<{ role: string }>();
    expect(role!.role).toBe("admin");

    // Used twice: refused, still one membership, and the invitation is no longer pending.
    expectError(await accept(invitee.token, link), 400, "invalid_link");
    expect(await membershipsOf(orgId, invitee.id)).toBe(1);
    expect((await pendingOf(owner.token, orgId)).body.invitations).toEqual([]);
  });

  it("records created and accepted events with the actor, org_id and invitation id, never the address or the token", async () => {
    const { orgId, owner, email, link, invitation } = await invited();
    const invitee = await accountWith(email);
    expect((await accept(invitee.token, link)).status).toBe(200);
    const rows = (
      await env.DB.prepare("SELECT event, user_id, detail FROM audit_events WHERE event LIKE 'invitation_%' AND detail LIKE ?")
        .bind(`%${invitation.id}%`)
        .all<{ event: string; user_id: string; detail: string }>()
    ).results;
    expect(rows.map((r) => [r.event, r.user_id])).toEqual([
      ["invitation_created", owner.id],
      ["invitation_accepted", invitee.id],
    ]);
    for (const r of rows) {
      expect(JSON.parse(r.detail)).toMatchObject({ org_id: orgId, invitation_id: invitation.id });
      expect(r.detail).not.toContain(email);
      expect(r.detail).not.toContain(link);
    }
  });

  it("an admin invites an admin or a member, never an owner; a member invites nobody; a stranger is told nothing", async () => {
    const box = mailbox();
    const { orgId, actor: admin } = await orgWith("admin");
    expectError(await invite(box, admin.token, orgId, address(), "owner"), 403, "forbidden");
    expect((await invite(box, admin.token, orgId, address(), "admin")).status).toBe(201);
    expect((await invite(box, admin.token, orgId, address(), "member")).status).toBe(201);
    const unknownRole = await invite(box, admin.token, orgId, address(), "emperor");
    expectError(unknownRole, 400, "validation_failed");
    expect(unknownRole.body.fields).toHaveProperty("role");

    const member = await accountWith();
    await addMember(orgId, member.id, "member");
    expectError(await invite(box, member.token, orgId, address(), "member"), 403, "forbidden");
    expectError(await pendingOf(member.token, orgId), 403, "forbidden");

    const stranger = await accountWith();
    expectError(await invite(box, stranger.token, orgId, address(), "member"), 404, "not_found");
    expectError(await pendingOf(stranger.token, orgId), 404, "not_found");
    expectError(await invite(box, stranger.token, crypto.randomUUID(), address(), "member"), 404, "not_found");
    // Only the two the admin could give were stored.
    expect((await pendingOf(admin.token, orgId)).body.invitations).toHaveLength(2);
  });

  it("refuses an address whose verified account is a member already (409), lower-casing it first", async () => {
    const box = mailbox();
    const { orgId, actor } = await orgWith("owner");
    const member = await accountWith();
    await addMember(orgId, member.id, "member");
    expectError(await invite(box, actor.token, orgId, member.email.toUpperCase()), 409, "already_member");
    // An unverified account with the address proves nothing: that invitation goes out.
    const unproved = await accountWith(address(), false);
    await addMember(orgId, unproved.id, "member");
    const res = await invite(box, actor.token, orgId, unproved.email.toUpperCase());
    expect(res.status, res.text).toBe(201);
    expect(res.body.invitation.email).toBe(unproved.email);
  });

  it("a re-invite of the same address replaces the pending invitation: the old link is refused, the new one works", async () => {
    const { box, orgId, owner, email, link: first, invitation } = await invited();
    const again = await invite(box, owner.token, orgId, email, "admin");
    expect(again.status).toBe(201);
    const second = box.link(email, "accept-invitation");
    expect(second).not.toBe(first);
    expect((await invitationRow(invitation.id))!.revoked_at).not.toBeNull();
    const pending = (await pendingOf(owner.token, orgId)).body.invitations;
    expect(pending.map((i: { id: string }) => i.id)).toEqual([again.body.invitation.id]);

    const invitee = await accountWith(email);
    expectError(await accept(invitee.token, first), 400, "invalid_link");
    const res = await accept(invitee.token, second);
    expect(res.status, res.text).toBe(200);
    expect(res.body.organization.role).toBe("admin");
  });

  it("holds at most 100 pending invitations per organization; a re-invite within them still replaces", async () => {
    const box = mailbox();
    const { orgId, actor } = await orgWith("owner");
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(await insertInvitation(orgId, `filler${i}@example.com`));
    expectError(await invite(box, actor.token, orgId, address()), 409, "too_many_invitations");
    expect(box.sent).toHaveLength(0);
    // Replacing one of the hundred keeps the count.
    expect((await invite(box, actor.token, orgId, "filler7@example.com")).status).toBe(201);
    // Revoked or expired ones do not count.
    expect((await call("DELETE", `/orgs/${orgId}/invitations/${ids[0]}`, { token: actor.token })).status).toBe(200);
    await setInvitationTime(ids[1]!, "expires_at", Date.now() - 1000);
    expect((await invite(box, actor.token, orgId, address())).status).toBe(201);
    expect((await invite(box, actor.token, orgId, address())).status).toBe(201);
    expectError(await invite(box, actor.token, orgId, address()), 409, "too_many_invitations");
    expect((await pendingOf(actor.token, orgId)).body.invitations).toHaveLength(100);
  });

  it("mails one address at most MAIL_RECIPIENT_DAILY invitations a day; past it the invitation is stored, unmailed", async () => {
    const box = mailbox();
    const { orgId, actor } = await orgWith("owner");
    const email = address();
    for (let i = 0; i < 6; i++) {
      const res = await box.send("POST", `/orgs/${orgId}/invitations`, { token: actor.token, body: { email, role: "member" }, bindings: noEdgeLimit });
      expect(res.status, res.text).toBe(201);
    }
    expect(box.sent.filter((m) => m.to === email)).toHaveLength(5);
    const refused = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'mail_refused' AND user_id = ? AND detail LIKE '%invitation%'")
      .bind(actor.id)
      .first<{ n: number }>();
    expect(refused!.n).toBe(1);
  });
});

describe("accepting", () => {
  it("an expired invitation is refused and no longer listed", async () => {
    const { orgId, owner, email, link, invitation } = await invited();
    await setInvitationTime(invitation.id, "expires_at", Date.now() - 1);
    const invitee = await accountWith(email);
    expectError(await accept(invitee.token, link), 400, "invalid_link");
    expect(await membershipsOf(orgId, invitee.id)).toBe(0);
    expect((await pendingOf(owner.token, orgId)).body.invitations).toEqual([]);
  });

  it("a revoked invitation is refused; revoking it again is not_found; an admin cannot revoke an owner's invitation to the owner role", async () => {
    const { orgId, owner, email, link, invitation } = await invited();
    const res = await call("DELETE", `/orgs/${orgId}/invitations/${invitation.id}`, { token: owner.token });
    expect(res.status, res.text).toBe(200);
    const invitee = await accountWith(email);
    expectError(await accept(invitee.token, link), 400, "invalid_link");
    expectError(await call("DELETE", `/orgs/${orgId}/invitations/${invitation.id}`, { token: owner.token }), 404, "not_found");

    const box = mailbox();
    const toOwner = await invite(box, owner.token, orgId, address(), "owner");
    const admin = await accountWith();
    await addMember(orgId, admin.id, "admin");
    expectError(await call("DELETE", `/orgs/${orgId}/invitations/${toOwner.body.invitation.id}`, { token: admin.token }), 403, "forbidden");
    const member = await accountWith();
    await addMember(orgId, member.id, "member");
    expectError(await call("DELETE", `/orgs/${orgId}/invitations/${toOwner.body.invitation.id}`, { token: member.token }), 403, "forbidden");
    // Another organization's admin cannot reach it through their own organization.
    const other = await orgWith("owner");
    expectError(await call("DELETE", `/orgs/${other.orgId}/invitations/${toOwner.body.invitation.id}`, { token: other.actor.token }), 404, "not_found");
    expect((await pendingOf(owner.token, orgId)).body.invitations).toHaveLength(1);
  });

  it("another verified address is refused (403) and the invitation stays usable by the invited one", async () => {
    const { orgId, email, link } = await invited();
    const other = await accountWith();
    const refused = await accept(other.token, link);
    expectError(refused, 403, "invitation_wrong_account");
    expect(refused.text).not.toContain(email);
    expect(await membershipsOf(orgId, other.id)).toBe(0);
    const invitee = await accountWith(email);
    expect((await accept(invitee.token, link)).status).toBe(200);
  });

  it("the invited address, not yet verified, is refused (403) until it is", async () => {
    const { orgId, email, link } = await invited();
    const invitee = await accountWith(email, false);
    expectError(await accept(invitee.token, link), 403, "invitation_wrong_account");
    expect(await membershipsOf(orgId, invitee.id)).toBe(0);
    await markVerified(invitee.id);
    expect((await accept(invitee.token, link)).status).toBe(200);
  });

  it("a person without an account signs up after the invitation, confirms the address by its link, and accepts", async () => {
    const { box, orgId, email, link } = await invited();
    const signup = await box.send("POST", "/register", { body: { username: uniqueName("late"), email, password: PASSWORD } });
    expect(signup.status, signup.text).toBe(201);
    const token = signup.body.access_token;
    expectError(await accept(token, link), 403, "invitation_wrong_account");
    const verified = await call("POST", "/email/verify", { token, body: { token: box.link(email, "verify-email") } });
    expect(verified.status, verified.text).toBe(200);
    const res = await accept(token, link);
    expect(res.status, res.text).toBe(200);
    expect(await membershipsOf(orgId, signup.body.user.id)).toBe(1);
  });

  it("two concurrent accepts of one token give exactly one membership", async () => {
    const { orgId, email, link } = await invited();
    const invitee = await accountWith(email);
    const second = await login(invitee.input.username);
    const answers = await Promise.all([accept(invitee.token, link), accept(second.body.access_token, link)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    expect(answers.find((a) => a.status === 400)!.body.error).toBe("invalid_link");
    expect(await membershipsOf(orgId, invitee.id)).toBe(1);
    const events = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'invitation_accepted' AND user_id = ?")
      .bind(invitee.id)
      .first<{ n: number }>();
    expect(events!.n).toBe(1);
  });

  it("two accepts of one token by one user in the same millisecond: one membership, one audit row", async () => {
    const { orgId, email, link } = await invited();
    const invitee = await accountWith(email);
    const second = await login(invitee.input.username);
    // Both requests see one clock reading: nothing but the batch itself tells the winner.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now());
      const answers = await Promise.all([accept(invitee.token, link), accept(second.body.access_token, link)]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    } finally {
      vi.useRealTimers();
    }
    expect(await membershipsOf(orgId, invitee.id)).toBe(1);
    const events = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'invitation_accepted' AND user_id = ?")
      .bind(invitee.id)
      .first<{ n: number }>();
    expect(events!.n).toBe(1);
  });

  it("a use, a revocation or a membership landing between the read and the batch: the batch's own conditions refuse, nothing half done", async () => {
    const race = async (sql: string, params: (ids: { invitation: string; orgId: string; user: string }) => unknown[]) => {
      const { orgId, email, link, invitation } = await invited();
      const invitee = await accountWith(email);
      const ids = { invitation: invitation.id, orgId, user: invitee.id };
      const DB = d1WriteBeforeBatch(1, sql, ...params(ids));
      const res = await call("POST", "/invitations/accept", { token: invitee.token, body: { token: link }, bindings: { DB } });
      return { res, ...ids };
    };
    const usedByOther = await race("UPDATE invitations SET accepted_at = ?, accepted_by = 'someone-else' WHERE id = ?", (i) => [Date.now(), i.invitation]);
    expectError(usedByOther.res, 400, "invalid_link");
    expect(await membershipsOf(usedByOther.orgId, usedByOther.user)).toBe(0);

    const revoked = await race("UPDATE invitations SET revoked_at = ? WHERE id = ?", (i) => [Date.now(), i.invitation]);
    expectError(revoked.res, 400, "invalid_link");
    expect(await membershipsOf(revoked.orgId, revoked.user)).toBe(0);

    const joined = await race("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'member', ?)", (i) => [i.orgId, i.user, Date.now()]);
    expectError(joined.res, 409, "already_member");
    expect((await invitationRow(joined.invitation))!.accepted_at).toBeNull();

    const unverified = await race("UPDATE users SET email_verified_at = NULL WHERE id = ?", (i) => [i.user]);
    expectError(unverified.res, 403, "invitation_wrong_account");
    expect((await invitationRow(unverified.invitation))!.accepted_at).toBeNull();
    const events = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'invitation_accepted' AND user_id IN (?, ?, ?, ?)")
      .bind(usedByOther.user, revoked.user, joined.user, unverified.user)
      .first<{ n: number }>();
    expect(events!.n).toBe(0);
  });

  it("an account in 100 organizations already is refused (409) and the invitation stays unused", async () => {
    const { email, link, invitation } = await invited();
    const invitee = await accountWith(email);
    for (let i = 0; i < 100; i++) {
      const other = await insertOrganization(`Other ${i}`);
      await addMember(other, invitee.id, "member");
    }
    expectError(await accept(invitee.token, link), 409, "too_many_organizations");
    expect((await invitationRow(invitation.id))!.accepted_at).toBeNull();
  });

  it("someone already a member is told so (409) and the invitation stays unused", async () => {
    const { orgId, owner, email, link, invitation } = await invited();
    const invitee = await accountWith(email);
    await addMember(orgId, invitee.id, "member");
    expectError(await accept(invitee.token, link), 409, "already_member");
    expect((await invitationRow(invitation.id))!.accepted_at).toBeNull();
    expect((await pendingOf(owner.token, orgId)).body.invitations).toHaveLength(1);
  });

  it("refuses malformed and unknown tokens, and a request without a Bearer token", async () => {
    const me = await accountWith();
    expectError(await accept(me.token, "short"), 400, "invalid_link");
    expectError(await accept(me.token, "A".repeat(43)), 400, "invalid_link");
    expectError(await call("POST", "/invitations/accept", { body: { token: "A".repeat(43) } }), 401, "invalid_token");
    expectError(await call("POST", "/invitations/accept", { token: me.token, body: {} }), 400, "validation_failed");
  });

  it("a deleted organization's invitations are gone with it, and its link is refused", async () => {
    const { orgId, email, link, invitation } = await invited();
    await env.DB.prepare("DELETE FROM organizations WHERE id = ?").bind(orgId).run();
    expect(await invitationRow(invitation.id)).toBeNull();
    const invitee = await accountWith(email);
    expectError(await accept(invitee.token, link), 400, "invalid_link");
  });
});

describe("housekeeping", () => {
  it("drops invitations accepted, revoked or expired over 7 days ago; keeps pending and recent ones", async () => {
    const { orgId } = await orgWith("owner");
    const id = async (email: string) => insertInvitation(orgId, email);
    const pending = await id("pending@example.com");
    const [acceptedOld, revokedOld, expiredOld, acceptedNew, expiredNew] = [
      await id("a-old@example.com"),
      await id("r-old@example.com"),
      await id("e-old@example.com"),
      await id("a-new@example.com"),
      await id("e-new@example.com"),
    ];
    const eightDaysAgo = Date.now() - 8 * DAY;
    await setInvitationTime(acceptedOld, "accepted_at", eightDaysAgo);
    await setInvitationTime(revokedOld, "revoked_at", eightDaysAgo);
    await setInvitationTime(expiredOld, "expires_at", eightDaysAgo);
    await setInvitationTime(acceptedNew, "accepted_at", Date.now() - DAY);
    await setInvitationTime(expiredNew, "expires_at", Date.now() - 6 * DAY);
    const { invitations } = await housekeeping(env);
    expect(invitations).toBeGreaterThanOrEqual(3);
    for (const gone of [acceptedOld, revokedOld, expiredOld]) expect(await invitationRow(gone)).toBeNull();
    for (const kept of [pending, acceptedNew, expiredNew]) expect(await invitationRow(kept)).not.toBeNull();
  });
});

describe("the organization answered", () => {
  it("has the contract's shape, with the invited role", async () => {
    const { email, link } = await invited("member");
    const invitee = await accountWith(email);
    const res = await accept(invitee.token, link);
    expect(Object.keys(res.body.organization).sort()).toEqual(["created_at", "id", "name", "role", "slug"]);
    expect(res.body.organization.role).toBe("member");
  });
});

describe("D1 round trips", () => {
  it("invite: the inviter's role, one batch, the audit row, then (after the answer) the mail's count; accept: the invitation, then one batch with its audit row", async () => {
    const { orgId, actor } = await orgWith("owner");
    const email = address();
    const box = mailbox();
    const { DB, trips } = countingD1();
    const ctx = createExecutionContext();
    const res = await call("POST", `/orgs/${orgId}/invitations`, {
      token: actor.token,
      body: { email, role: "member" },
      bindings: { DB, EMAIL: box.binding },
      ctx,
    });
    expect(res.status, res.text).toBe(201);
    await waitOnExecutionContext(ctx);
    expect(trips.n).toBe(4);
    const invitee = await accountWith(email);
    const accepted = await d1Usage("POST", "/invitations/accept", { token: invitee.token, body: { token: box.link(email, "accept-invitation") } });
    expect(accepted.res.status, accepted.res.text).toBe(200);
    expect(accepted.n).toBe(2);
  });
});
