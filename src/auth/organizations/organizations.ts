import { audit } from "../../audit";
import { mayGrant, permissionsOf, rolesOf } from "../../config-orgs";
import { batch } from "../../db/batch";
import { roleOf } from "../../db/memberships";
import {
  createOrganizationStatements,
  deleteOrganization as deleteOrganizationRow,
  membershipOf,
  type OrgView,
  organizationPage,
  organizationsOf,
  type TimeIdCursor,
  updateOrganization as updateOrganizationRow,
} from "../../db/organizations";
import type { Deps } from "../../deps";
import { Refusal } from "../core/errors";
import { type StepUpAsk, type StepUpInput, stepUp } from "../core/step-up";

/**
 * Organizations (docs/organizations.md): create, list, read, rename, delete. Who may do what is read
 * from D1 (memberships), never from a token's `org_role`, which may be up to ACCESS_TOKEN_TTL old;
 * each write checks it again in its own statement. Knows nothing of HTTP.
 */

/** A user belongs to at most this many organizations (each membership is a row a refresh may join). */
export const MAX_ORGANIZATIONS_PER_USER = 100;

export const notMember = () => new Refusal("not_found", "No such organization"); // the same answer as for one that does not exist
const slugTaken = () => new Refusal("org_slug_taken");

/** The roles of this deployment that hold `permission`. */
export const rolesWith = (deps: Deps, permission: string) =>
  rolesOf(deps.config.ORG_ROLES).filter((r) => permissionsOf(deps.config.ORG_ROLES, r).includes(permission));

/** The roles that may change a member's role to `role`, or remove one (then `role` is undefined): members:manage, and the rank rule. */
export const managersOf = (deps: Deps, role?: string) => rolesWith(deps, "members:manage").filter((r) => mayGrant(r, role ?? "member"));

/** The member's role allows `permission`. */
export const allows = (deps: Deps, role: string, permission: string) => permissionsOf(deps.config.ORG_ROLES, role).includes(permission);

export async function createOrganization(deps: Deps, userId: string, input: { name: string; slug: string }): Promise<OrgView> {
  const now = new Date();
  const org = { id: crypto.randomUUID(), ...input, userId, now };
  const { before, created } = await batch(deps.db, createOrganizationStatements(deps.db, org, MAX_ORGANIZATIONS_PER_USER));
  if (!created[0]) {
    if ((before[0]?.n ?? 0) >= MAX_ORGANIZATIONS_PER_USER) throw new Refusal("too_many_organizations");
    throw slugTaken(); // the insert's one other refusal (ON CONFLICT DO NOTHING): the random id does not collide
  }
  await audit(deps, "org_created", { user_id: userId, org_id: org.id, slug: org.slug });
  return { id: org.id, name: org.name, slug: org.slug, createdAt: now, role: "owner" };
}

export const myOrganizations = (deps: Deps, userId: string) => organizationsOf(deps.db, userId, MAX_ORGANIZATIONS_PER_USER).all();

/** The organization as the caller sees it; not_found when they are not its member. */
export async function organizationFor(deps: Deps, userId: string, orgId: string): Promise<OrgView> {
  const found = await membershipOf(deps.db, orgId, userId).get();
  if (!found) throw notMember();
  return found;
}

/** Renames or re-slugs (org:update). One batch: the caller's membership as the write saw it, and the write. */
export async function updateOrganization(deps: Deps, userId: string, orgId: string, patch: { name?: string; slug?: string }): Promise<OrgView> {
  const roles = rolesWith(deps, "org:update");
  const { member, updated } = await batch(deps.db, {
    member: membershipOf(deps.db, orgId, userId),
    updated: updateOrganizationRow(deps.db, orgId, userId, roles, patch),
  });
  const role = member[0]?.role;
  if (!role) throw notMember();
  if (!roles.includes(role)) throw new Refusal("forbidden", "Renaming takes the org:update permission");
  const org = updated[0];
  if (!org) throw slugTaken();
  await audit(deps, "org_updated", { user_id: userId, org_id: orgId, ...patch });
  return { ...org, role };
}

/**
 * Deletes the organization: its owner, after the step-up manage_organization. Checked before the
 * step-up (a member is told 403 without spending a password try) and again by the delete itself.
 */
export async function deleteOrganization(deps: Deps, ask: StepUpAsk<"manage_organization">, orgId: string, check: StepUpInput): Promise<void> {
  const userId = ask.claims.sub;
  await ownerOnly(deps, orgId, userId, "Only an owner deletes the organization");
  await stepUp(deps, ask, check);
  const deleted = await deleteOrganizationRow(deps.db, orgId, userId);
  if (!deleted[0]) throw notMember(); // gone, or the caller no longer its owner, meanwhile
  await audit(deps, "org_deleted", { user_id: userId, session_id: ask.claims.sid, org_id: orgId });
}

/** 404 for a non-member, 403 for a member who is not an owner. */
export async function ownerOnly(deps: Deps, orgId: string, userId: string, why: string) {
  const role = await roleOf(deps.db, orgId, userId);
  if (!role) throw notMember();
  if (role !== "owner") throw new Refusal("forbidden", why);
}

/** Every organization with its member count (admins; from a read replica: a list to look at). */
export const adminOrganizationPage = (deps: Deps, limit: number, after?: TimeIdCursor) => organizationPage(deps.replica(), limit, after);
