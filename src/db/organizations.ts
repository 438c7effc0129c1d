import { and, count, desc, eq, exists, isNull, lt, ne, or, type SQL, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import type { Db } from "./client";
import { memberships, organizations } from "./organization-tables";
import { sessions, users } from "./schema";
import { issuingColumns, ownerClaims } from "./session-rotation";
import { extendAccess, live, ownLiveSession } from "./sessions";

/**
 * Organizations (docs/organizations.md): creating, reading, renaming and deleting one, the lists,
 * and a session's switch of its active organization. Who may act is checked in the statement that
 * writes (db/memberships.ts `actorHolds`), so a role taken away meanwhile wins. Membership changes
 * are db/memberships.ts's.
 */

/** An organization as its member sees it: with their role. */
export const memberView = {
  id: organizations.id,
  name: organizations.name,
  slug: organizations.slug,
  createdAt: organizations.createdAt,
  role: memberships.role,
};
export type OrgView = { id: string; name: string; slug: string; createdAt: Date; role: string };

/** The actor's membership row, under its own name: the statements below also read or write `memberships` itself. */
const actor = alias(memberships, "actor");

/** The user `userId` holds one of `roles` in the organization (when the statement runs). */
export const actorHolds = (orgId: string, userId: string, roles: string[], also?: SQL) =>
  sql`EXISTS (SELECT 1 FROM ${memberships} AS "actor" WHERE ${and(eq(actor.orgId, orgId), eq(actor.userId, userId), sql`${actor.role} IN ${roles}`, also)})`;

export interface NewOrganization {
  id: string;
  name: string;
  slug: string;
  userId: string;
  now: Date;
}

/**
 * One batch: how many organizations the user is in, the organization (only while that is under `max`,
 * and only if the slug is free: ON CONFLICT DO NOTHING), and the creator's owner membership (only if
 * the organization was written). The bound is in the insert itself, so concurrent creations cannot pass it.
 */
export function createOrganizationStatements(db: Db, o: NewOrganization, max: number) {
  const value = (v: string | number, name: string) => sql`${v}`.as(name);
  const inOrgs = db.select({ n: count() }).from(memberships).where(eq(memberships.userId, o.userId));
  return {
    before: inOrgs,
    created: db
      .insert(organizations)
      .select(
        db
          .select({
            id: value(o.id, "id"),
            name: value(o.name, "name"),
            slug: value(o.slug, "slug"),
            createdBy: users.id,
            createdAt: value(o.now.getTime(), "created_at"),
          })
          .from(users)
          .where(and(eq(users.id, o.userId), sql`(${inOrgs}) < ${max}`)),
      )
      .onConflictDoNothing()
      .returning({ id: organizations.id }),
    owner: db.insert(memberships).select(
      db
        .select({ orgId: organizations.id, userId: value(o.userId, "user_id"), role: value("owner", "role"), createdAt: value(o.now.getTime(), "created_at") })
        .from(organizations)
        .where(and(eq(organizations.id, o.id), eq(organizations.createdBy, o.userId))),
    ),
  };
}

/** The organization as the user sees it, or nothing when they are not its member. */
export const membershipOf = (db: Db, orgId: string, userId: string) =>
  db
    .select(memberView)
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));

/** The user's organizations, the newest membership first (a user is in at most 100). */
export const organizationsOf = (db: Db, userId: string, limit: number) =>
  db
    .select(memberView)
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(eq(memberships.userId, userId))
    .orderBy(desc(memberships.createdAt), desc(memberships.orgId))
    .limit(limit);

/** Renames or re-slugs, only while the actor holds one of `roles` and the new slug is no other organization's. */
export function updateOrganization(db: Db, orgId: string, actorId: string, roles: string[], patch: { name?: string; slug?: string }) {
  const other = alias(organizations, "other");
  const slugFree =
    patch.slug === undefined
      ? undefined
      : sql`NOT EXISTS (SELECT 1 FROM ${organizations} AS "other" WHERE ${and(eq(other.slug, patch.slug), ne(other.id, orgId))})`;
  return db
    .update(organizations)
    .set(patch)
    .where(and(eq(organizations.id, orgId), actorHolds(orgId, actorId, roles), slugFree))
    .returning({ id: organizations.id, name: organizations.name, slug: organizations.slug, createdAt: organizations.createdAt });
}

/** Whether a slug is taken (by an organization other than `except`). */
export const slugTaken = (db: Db, slug: string, except?: string) =>
  db
    .select({ id: organizations.id })
    .from(organizations)
    .where(and(eq(organizations.slug, slug), except ? ne(organizations.id, except) : undefined));

/**
 * Deletes the organization while the actor is its owner. Memberships, invitations and its API keys go
 * with it (ON DELETE CASCADE); sessions whose active organization it was keep the id, which no
 * membership matches any more: their next token carries no organization.
 */
export const deleteOrganization = (db: Db, orgId: string, actorId: string) =>
  db
    .delete(organizations)
    .where(and(eq(organizations.id, orgId), actorHolds(orgId, actorId, ["owner"])))
    .returning({ id: organizations.id });

/**
 * Housekeeping: organizations left with no member (their only member deleted their account), created
 * before `before`: nobody can reach them, and their slugs are freed. Their keys and invitations go by cascade.
 */
export async function deleteEmptyOrganizations(db: Db, before: Date) {
  const gone = await db
    .delete(organizations)
    .where(and(lt(organizations.createdAt, before), sql`NOT EXISTS (SELECT 1 FROM ${memberships} WHERE ${memberships.orgId} = ${organizations.id})`))
    .returning({ id: organizations.id });
  return gone.length;
}

export interface TimeIdCursor {
  createdAt: number;
  id: string;
}

/** Every organization with its member count, newest first (for admins; from a replica). */
export function organizationPage(db: Db, limit: number, after?: TimeIdCursor) {
  const where = after
    ? or(lt(organizations.createdAt, new Date(after.createdAt)), and(eq(organizations.createdAt, new Date(after.createdAt)), lt(organizations.id, after.id)))
    : undefined;
  return db
    .select({
      id: organizations.id,
      name: organizations.name,
      slug: organizations.slug,
      createdAt: organizations.createdAt,
      members: sql<number>`(SELECT count(*) FROM ${memberships} WHERE ${memberships.orgId} = ${organizations.id})`,
    })
    .from(organizations)
    .where(where)
    .orderBy(desc(organizations.createdAt), desc(organizations.id))
    .limit(limit)
    .all();
}

export interface Switch {
  sessionId: string;
  userId: string;
  orgId: string | null;
  now: Date;
  accessExpiresAt: Date; // now + ACCESS_TOKEN_TTL: the row keeps its newest access token's expiry
  requireVerified: boolean;
  jti: string; // the access token presented: it switches once (the same switch sent again excepted)
}

/**
 * A session's switch, one batch: the session takes the organization (only the API's own live session
 * of this user, and only while the user is a member: the condition is in the write), then the claims
 * of its next access token, read as a refresh reads them, and the organization's name for the answer.
 */
export function switchStatements(db: Db, s: Switch) {
  const member =
    s.orgId === null
      ? undefined
      : exists(
          db
            .select({ one: sql`1` })
            .from(memberships)
            .where(and(eq(memberships.orgId, s.orgId), eq(memberships.userId, s.userId))),
        );
  // Not switched with this token yet, or switched with it to this same place (the retry of a lost answer).
  const once = or(isNull(sessions.switchedWith), ne(sessions.switchedWith, s.jti), s.orgId === null ? isNull(sessions.orgId) : eq(sessions.orgId, s.orgId));
  return {
    switched: db
      .update(sessions)
      .set({ orgId: s.orgId, switchedWith: s.jti, accessExpiresAt: extendAccess(s.accessExpiresAt) })
      .where(and(ownLiveSession(s), once, member))
      .returning(issuingColumns),
    // Read after the update: whether this token already switched the session (then it lost a race).
    spent: db
      .select({ one: sql`1` })
      .from(sessions)
      .where(and(eq(sessions.id, s.sessionId), eq(sessions.switchedWith, s.jti))),
    owner: ownerClaims(db, and(eq(sessions.id, s.sessionId), live(s.now))),
    organization:
      s.orgId === null
        ? undefined
        : db.select({ name: organizations.name, createdAt: organizations.createdAt }).from(organizations).where(eq(organizations.id, s.orgId)),
  };
}
