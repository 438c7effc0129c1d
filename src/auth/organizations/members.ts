import { audit } from "../../audit";
import { isRole, mayGrant } from "../../config-orgs";
import { batch } from "../../db/batch";
import { changeRole as changeRoleRow, memberPage, memberRow, removeMemberStatements, roleOf, transferStatements } from "../../db/memberships";
import type { TimeIdCursor } from "../../db/organizations";
import type { Deps } from "../../deps";
import { Refusal } from "../core/errors";
import { type StepUpAsk, type StepUpInput, stepUp } from "../core/step-up";
import { allows, managersOf, notMember, ownerOnly } from "./organizations";

/**
 * Members (docs/organizations.md): the list, a role change, a removal or leaving, and handing
 * ownership over. Each write is one conditional statement (or batch) that checks the actor's role and
 * keeps an owner; the member rows read beside it in the same batch say why it did not happen.
 * Knows nothing of HTTP.
 */

const lastOwner = () => new Refusal("last_owner");
const noSuchMember = () => new Refusal("not_found", "No such member");
const outranked = () => new Refusal("forbidden", "Only an owner changes or removes an owner, or makes one; an admin manages the rest");

/** A page of the organization's members (members:read; every built-in role has it). */
export async function membersOf(deps: Deps, userId: string, orgId: string, limit: number, after?: TimeIdCursor) {
  const { me, rows } = await batch(deps.db, { me: memberRow(deps.db, orgId, userId), rows: memberPage(deps.db, orgId, limit, after) });
  const role = me[0]?.role;
  if (!role) throw notMember();
  if (!allows(deps, role, "members:read")) throw new Refusal("forbidden", "Listing members takes the members:read permission");
  return rows;
}

/** Why an actor with `actorRole` may not act on a member with `targetRole` (giving `role`), or null when they may. */
function refusalFor(deps: Deps, actorRole: string, targetRole: string, role?: string): Refusal | null {
  if (!allows(deps, actorRole, "members:manage")) return new Refusal("forbidden", "Managing members takes the members:manage permission");
  if (!mayGrant(actorRole, targetRole) || (role !== undefined && !mayGrant(actorRole, role))) return outranked();
  return null;
}

/** Changes a member's role (members:manage; never above the actor's rank nor on someone above it); never leaves no owner. */
export async function changeMemberRole(deps: Deps, actorId: string, orgId: string, targetId: string, role: string) {
  if (!isRole(deps.config.ORG_ROLES, role)) throw new Refusal("validation_failed", undefined, { role: "is not a role of this service" });
  const { actor, target, changed } = await batch(deps.db, {
    actor: memberRow(deps.db, orgId, actorId),
    target: memberRow(deps.db, orgId, targetId),
    changed: changeRoleRow(deps.db, { orgId, actorId, targetId, role, managers: managersOf(deps, role) }),
  });
  const [actorRole, before] = [actor[0]?.role, target[0]?.role];
  if (!actorRole) throw notMember();
  if (!before) throw noSuchMember();
  const done = changed[0];
  if (!done) throw refusalFor(deps, actorRole, before, role) ?? lastOwner();
  await audit(deps, "member_role_changed", { user_id: actorId, org_id: orgId, target_user_id: targetId, from: before, to: role });
  return done;
}

/** Removes a member (members:manage, the rank rule), or the caller leaves (targetId is theirs); never the last owner. */
export async function removeMember(deps: Deps, actorId: string, orgId: string, targetId: string): Promise<"left" | "removed"> {
  const { actor, target, removed } = await batch(deps.db, {
    actor: memberRow(deps.db, orgId, actorId),
    target: memberRow(deps.db, orgId, targetId),
    ...removeMemberStatements(deps.db, { orgId, actorId, targetId, managers: managersOf(deps) }),
  });
  const [actorRole, before] = [actor[0]?.role, target[0]?.role];
  if (!actorRole) throw notMember();
  if (!before) throw noSuchMember();
  const leaving = actorId === targetId;
  if (!removed[0]) throw (leaving ? null : refusalFor(deps, actorRole, before)) ?? lastOwner();
  const event = leaving ? "member_left" : "member_removed";
  await audit(deps, event, { user_id: actorId, org_id: orgId, target_user_id: targetId, role: before });
  return leaving ? "left" : "removed";
}

/**
 * Hands ownership to another member: the caller (an owner, after the step-up manage_organization)
 * becomes admin, the target owner, in one batch that only happens while the target is a member.
 */
export async function transferOwnership(deps: Deps, ask: StepUpAsk<"manage_organization">, orgId: string, targetId: string, check: StepUpInput) {
  const actorId = ask.claims.sub;
  if (targetId === actorId) throw new Refusal("validation_failed", undefined, { user_id: "is you: name another member" });
  await ownerOnly(deps, orgId, actorId, "Only an owner hands the organization over");
  if (!(await roleOf(deps.db, orgId, targetId))) throw noSuchMember();
  await stepUp(deps, ask, check);
  const { promoted, demoted } = await batch(deps.db, transferStatements(deps.db, { orgId, actorId, targetId }));
  // Meanwhile the target left or was removed, or the caller stopped being an owner: nothing changed.
  if (!promoted[0] || !demoted[0]) throw noSuchMember();
  await audit(deps, "org_transferred", { user_id: actorId, session_id: ask.claims.sid, org_id: orgId, target_user_id: targetId });
}
