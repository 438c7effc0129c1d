import { auditRowIf, logEvent } from "../../audit";
import { batch } from "../../db/batch";
import { acceptRefusalReads, acceptStatements, invitationByHash, isPending, joinedJustNow, MAX_ORGANIZATIONS_PER_USER } from "../../db/invitations";
import type { Deps } from "../../deps";
import { sha256Base64Url } from "../../encoding";
import { Refusal } from "../core/errors";
import type { AccessClaims } from "../core/tokens";

/**
 * Accepting an invitation (POST /invitations/accept): only by a signed-in account whose verified
 * address is the invited one. The link alone is not enough (it may have been forwarded, or read in
 * a mailbox someone else holds for a while), and neither is an account that merely claims the
 * address: it must have proved it (docs/security.md, Invitations).
 */

const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const invalidLink = () => new Refusal("invalid_link", "This invitation is unknown, used, revoked or expired");

export interface AcceptedOrganization {
  id: string;
  name: string;
  slug: string;
  role: string;
  created_at: string;
}

/**
 * One read of the invitation (to refuse a dead link at once, and for the answer), then one batch:
 * the conditional UPDATE ... RETURNING that uses it, the membership INSERT ... SELECT that happens
 * only if that update did, the audit row likewise, and the reads that say why, if it did not. Of
 * two concurrent accepts of one token exactly one updates the row, so exactly one membership.
 */
export async function acceptInvitation(deps: Deps, claims: AccessClaims, token: string): Promise<AcceptedOrganization> {
  if (!TOKEN_FORMAT.test(token)) throw invalidLink();
  const tokenHash = await sha256Base64Url(token);
  const now = new Date();
  const found = await invitationByHash(deps.db, tokenHash);
  if (!found || !isPending(found.invitation, now)) throw invalidLink();
  const { invitation, org } = found;
  const userId = claims.sub;
  const event = { user_id: userId, session_id: claims.sid, org_id: invitation.orgId, invitation_id: invitation.id, role: invitation.role };
  const { accepted: use, joined } = acceptStatements(deps.db, tokenHash, userId, now);
  const done = await batch(deps.db, {
    accepted: use,
    joined,
    // Right after `joined`: written only if this request's insert added the membership.
    audited: auditRowIf(deps, "invitation_accepted", event, joinedJustNow(tokenHash, userId, now)),
    ...acceptRefusalReads(deps.db, tokenHash, invitation.orgId, userId),
  });
  const [accepted] = done.accepted;
  if (accepted && done.joined[0]) {
    logEvent(deps, "invitation_accepted", event);
    return { id: invitation.orgId, name: org.name, slug: org.slug, role: accepted.role, created_at: org.createdAt.toISOString() };
  }
  // Refused: say why, in this order, from the state the batch saw. The address is never echoed.
  const after = done.invitation[0];
  if (!after || !isPending(after, now)) throw invalidLink();
  const caller = done.caller[0];
  if (!caller || caller.email !== after.email || !caller.verified) throw new Refusal("invitation_wrong_account");
  if ((done.member[0]?.n ?? 0) > 0) throw new Refusal("already_member", "You are already a member of this organization");
  if ((done.memberships[0]?.n ?? 0) >= MAX_ORGANIZATIONS_PER_USER) throw new Refusal("too_many_organizations");
  throw invalidLink();
}
