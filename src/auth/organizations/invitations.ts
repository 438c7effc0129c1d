import { audit } from "../../audit";
import type { Config } from "../../config";
import { isRole, mayGrant, permissionsOf } from "../../config-orgs";
import { batch } from "../../db/batch";
import { type Invitation, inviteStatements, MAX_PENDING_INVITATIONS, pendingInvitation, pendingInvitations, revokePending } from "../../db/invitations";
import { roleOf } from "../../db/memberships";
import type { Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { appLink, compose, sendAfterAnswer } from "../../mail";
import { Refusal } from "../core/errors";
import type { AccessClaims } from "../core/tokens";
import { spendMailBudget } from "../mail/budget";
import { requireAppUrl } from "../mail/links";

/**
 * Inviting an address into an organization, listing and revoking what is pending (docs/organizations.md,
 * Invitations). Accepting is ./accept-invitation.ts. The actor's role is read from D1 (never from the
 * token's `org_role`, which may be an access token's lifetime old): owners and admins invite
 * (`members:invite`), and never to a role above their own (mayGrant). An invitation's link carries
 * 256 random bits; only its SHA-256 is stored, and the token is never logged.
 */

/**
 * The actor's role in the organization, if it lets them manage invitations. Someone who is not a
 * member gets not_found, as for any other route under the organization: its existence is not told.
 */
async function inviterRole(deps: Deps, orgId: string, userId: string): Promise<string> {
  const role = await roleOf(deps.db, orgId, userId);
  if (!role) throw new Refusal("not_found");
  if (!permissionsOf(deps.config.ORG_ROLES, role).includes("members:invite")) throw new Refusal("forbidden", "Only owners and admins manage invitations");
  return role;
}

/** Control characters never reach a mail header or body from a name someone typed. */
const plain = (s: string) => s.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, " ");

function invitationMail(config: Config, to: string, names: { org: string; inviter: string }, role: string, token: string, expiresAt: Date) {
  const org = plain(names.org);
  const lines = [
    `${names.inviter ? plain(names.inviter) : "A member"} invited you to join the organization "${org}" on ${config.APP_NAME}, as ${role}.`,
    `To accept, open the link below signed in to your account with this address (${to}). No account yet? Sign up with this address and confirm it, then open the link again: the invitation waits until ${expiresAt.toUTCString()}.`,
    "The link works once. If you did not expect this invitation, ignore this mail: nothing happens unless you accept.",
  ];
  return compose(to, `You are invited to join ${org}`, lines, { url: appLink(config, "accept-invitation", token), label: "Accept the invitation" });
}

/** The invitation as the API shows it: never the token or its hash. */
export const invitationView = (i: Invitation) => ({
  id: i.id,
  org_id: i.orgId,
  email: i.email,
  role: i.role,
  invited_by: i.invitedBy,
  created_at: i.createdAt.toISOString(),
  expires_at: i.expiresAt.toISOString(),
});
export type InvitationView = ReturnType<typeof invitationView>;

/**
 * Invites `email` with `role`: one batch stores it (while the inviter still holds their role, no
 * verified account with the address is a member, and the organization has room) and replaces a
 * pending invitation to the same address. The mail goes after the answer, within the recipient's
 * daily budget for invitations (MAIL_RECIPIENT_DAILY): past it the invitation stands, unmailed.
 */
export async function invite(deps: Deps, claims: AccessClaims, orgId: string, input: { email: string; role: string }): Promise<InvitationView> {
  requireAppUrl(deps.config);
  const email = input.email.toLowerCase();
  const role = await inviterRole(deps, orgId, claims.sub);
  if (!isRole(deps.config.ORG_ROLES, input.role)) throw new Refusal("validation_failed", undefined, { role: "is not a role of this deployment" });
  if (!mayGrant(role, input.role)) throw new Refusal("forbidden", `Your role (${role}) cannot invite with the role ${input.role}`);
  // An inviter's mail budget at the edge, as for any mail they cause to an address not theirs.
  await deps.limitMail?.(`user:${claims.sub}`);
  const now = new Date();
  const token = toBase64Url(randomBytes(32));
  const row = {
    id: crypto.randomUUID(),
    orgId,
    email,
    role: input.role,
    invitedBy: claims.sub,
    tokenHash: await sha256Base64Url(token),
    now,
    expiresAt: new Date(now.getTime() + deps.config.INVITATION_TTL * 1000),
  };
  const done = await batch(deps.db, inviteStatements(deps.db, row, role));
  const [stored] = done.inserted;
  if (!stored) {
    if (done.member[0]?.yes) throw new Refusal("already_member", "An account with this verified address is already a member");
    if ((done.pending[0]?.n ?? 0) >= MAX_PENDING_INVITATIONS) throw new Refusal("too_many_invitations");
    throw new Refusal("forbidden", "Your role in this organization changed: reload and try again");
  }
  await audit(deps, "invitation_created", {
    user_id: claims.sub,
    session_id: claims.sid,
    org_id: orgId,
    invitation_id: stored.id,
    role: stored.role,
    replaced: done.replaced.map((r) => r.id).join(",") || undefined,
  });
  const names = done.names[0];
  if (names) {
    const mail = invitationMail(deps.config, email, names, stored.role, token, stored.expiresAt);
    sendAfterAnswer(deps, mail, { user_id: claims.sub, purpose: "invitation" }, () => spendMailBudget(deps, email, "invitation", claims.sub));
  }
  return invitationView(stored);
}

/** The organization's pending invitations, newest first. */
export async function listInvitations(deps: Deps, claims: AccessClaims, orgId: string): Promise<InvitationView[]> {
  await inviterRole(deps, orgId, claims.sub);
  return (await pendingInvitations(deps.db, orgId, new Date())).map(invitationView);
}

/** Revokes a pending invitation: its link is refused from then on. An admin cannot revoke an invitation to a role above theirs. */
export async function revokeInvitation(deps: Deps, claims: AccessClaims, orgId: string, id: string): Promise<void> {
  const role = await inviterRole(deps, orgId, claims.sub);
  const now = new Date();
  const pending = await pendingInvitation(deps.db, orgId, id, now);
  if (!pending) throw new Refusal("not_found", "No pending invitation by that id in this organization");
  if (!mayGrant(role, pending.role)) throw new Refusal("forbidden", `Your role (${role}) cannot revoke an invitation with the role ${pending.role}`);
  const [revoked] = await revokePending(deps.db, orgId, id, now);
  if (!revoked) throw new Refusal("not_found", "No pending invitation by that id in this organization");
  await audit(deps, "invitation_revoked", { user_id: claims.sub, session_id: claims.sid, org_id: orgId, invitation_id: id });
}
