import { and, desc, eq, lt, ne, notExists, or, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import type { Db } from "./client";
import { memberships } from "./organization-tables";
import { actorHolds } from "./organizations";
import { sessions, users } from "./schema";

/**
 * Who belongs to which organization with which role (db/organization-tables.ts). Every check of an
 * actor's role in an organization reads it here, from D1: the token's `org_role` is for resource
 * servers, and may be up to one access token's lifetime old.
 */

/** The user's role in the organization, or undefined when they are not its member. */
export async function roleOf(db: Db, orgId: string, userId: string): Promise<string | undefined> {
  const row = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)))
    .get();
  return row?.role;
}

/** A member as the members list shows them. */
export interface MemberRow {
  userId: string;
  username: string;
  email: string | null;
  role: string;
  joinedAt: Date;
}

/** The organization's members, the newest first, a page at a time (keyset on joined time and user id). */
export function memberPage(db: Db, orgId: string, limit: number, after?: { createdAt: number; id: string }) {
  const joined = new Date(after?.createdAt ?? 0);
  return db
    .select({ userId: memberships.userId, username: users.username, email: users.email, role: memberships.role, joinedAt: memberships.createdAt })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(
      and(
        eq(memberships.orgId, orgId),
        after ? or(lt(memberships.createdAt, joined), and(eq(memberships.createdAt, joined), lt(memberships.userId, after.id))) : undefined,
      ),
    )
    .orderBy(desc(memberships.createdAt), desc(memberships.userId))
    .limit(limit);
}

/** The member's row, read in a batch beside a write: the state that write saw (404, 403 and 409 are told apart by it). */
export const memberRow = (db: Db, orgId: string, userId: string) =>
  db
    .select({ role: memberships.role, createdAt: memberships.createdAt })
    .from(memberships)
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));

const memberColumns = { userId: memberships.userId, role: memberships.role, joinedAt: memberships.createdAt };

/** Another owner than `userId` remains in the organization (the last owner stays). */
const otherOwner = (orgId: string, userId: string) => {
  const other = alias(memberships, "other");
  return sql`EXISTS (SELECT 1 FROM ${memberships} AS "other" WHERE ${and(eq(other.orgId, orgId), eq(other.role, "owner"), ne(other.userId, userId))})`;
};

/**
 * The actor may act on this row's member: they hold one of `managers` (the roles that may manage
 * members and grant what is asked), and an owner's row only an owner touches (a rank is never
 * exceeded: src/config-orgs.ts mayGrant; owner is the one rank above admin).
 */
const actorOutranks = (orgId: string, actorId: string, managers: string[]) =>
  actorHolds(orgId, actorId, managers, sql`("actor"."role" = 'owner' OR ${memberships.role} <> 'owner')`);

export interface RoleChange {
  orgId: string;
  actorId: string;
  targetId: string;
  role: string;
  managers: string[]; // roles that may manage members and grant `role`
}

/**
 * One conditional statement: the member's role becomes `role` only if the actor may (when it runs),
 * and never when it would leave the organization without an owner. Two owners demoting each other,
 * or themselves, at once: D1 runs one statement at a time, so the second finds the first's result.
 */
export const changeRole = (db: Db, r: RoleChange) =>
  db
    .update(memberships)
    .set({ role: r.role })
    .where(
      and(
        eq(memberships.orgId, r.orgId),
        eq(memberships.userId, r.targetId),
        actorOutranks(r.orgId, r.actorId, r.managers),
        r.role === "owner" ? undefined : or(ne(memberships.role, "owner"), otherOwner(r.orgId, r.targetId)),
      ),
    )
    .returning(memberColumns);

/**
 * A removal (or, the actor being the member, leaving), one batch: the membership goes only if the
 * actor may and another owner remains; then the member's sessions that had this organization active
 * lose it (only once the membership is gone), so a later invitation does not bring it back to them.
 */
export function removeMemberStatements(db: Db, r: Omit<RoleChange, "role">) {
  return {
    removed: db
      .delete(memberships)
      .where(
        and(
          eq(memberships.orgId, r.orgId),
          eq(memberships.userId, r.targetId),
          r.actorId === r.targetId ? undefined : actorOutranks(r.orgId, r.actorId, r.managers),
          or(ne(memberships.role, "owner"), otherOwner(r.orgId, r.targetId)),
        ),
      )
      .returning(memberColumns),
    sessionsCleared: db
      .update(sessions)
      .set({ orgId: null })
      .where(
        and(
          eq(sessions.userId, r.targetId),
          eq(sessions.orgId, r.orgId),
          notExists(
            db
              .select({ one: sql`1` })
              .from(memberships)
              .where(and(eq(memberships.orgId, r.orgId), eq(memberships.userId, r.targetId))),
          ),
        ),
      ),
  };
}

/**
 * A handover, one batch: the target (a member, not the actor) becomes owner while the actor is one;
 * then the actor becomes admin, only once the target is an owner.
 */
export function transferStatements(db: Db, t: { orgId: string; actorId: string; targetId: string }) {
  const target = alias(memberships, "target");
  return {
    promoted: db
      .update(memberships)
      .set({ role: "owner" })
      .where(
        and(eq(memberships.orgId, t.orgId), eq(memberships.userId, t.targetId), ne(memberships.userId, t.actorId), actorHolds(t.orgId, t.actorId, ["owner"])),
      )
      .returning(memberColumns),
    demoted: db
      .update(memberships)
      .set({ role: "admin" })
      .where(
        and(
          eq(memberships.orgId, t.orgId),
          eq(memberships.userId, t.actorId),
          eq(memberships.role, "owner"),
          sql`EXISTS (SELECT 1 FROM ${memberships} AS "target" WHERE ${and(eq(target.orgId, t.orgId), eq(target.userId, t.targetId), eq(target.role, "owner"))})`,
        ),
      )
      .returning(memberColumns),
  };
}

/**
 * True unless the user is the only owner of an organization that has other members: checked in the
 * statement that deletes an account (db/admins.ts deleteUser), so no organization is left without an
 * owner by a departure either. An organization whose only member the user is goes unowned and empty.
 */
export const notSoleOwner = (userId: string) =>
  sql`NOT EXISTS (SELECT 1 FROM ${memberships} AS "mine" WHERE "mine"."user_id" = ${userId} AND "mine"."role" = 'owner'
    AND NOT EXISTS (SELECT 1 FROM ${memberships} AS "co" WHERE "co"."org_id" = "mine"."org_id" AND "co"."role" = 'owner' AND "co"."user_id" <> ${userId})
    AND EXISTS (SELECT 1 FROM ${memberships} AS "peer" WHERE "peer"."org_id" = "mine"."org_id" AND "peer"."user_id" <> ${userId}))`;

/** Whether notSoleOwner fails for the user (to say why an account deletion was refused). */
export const isSoleOwner = async (db: Db, userId: string) =>
  (await db
    .select({ one: sql`1` })
    .from(users)
    .where(and(eq(users.id, userId), sql`NOT ${notSoleOwner(userId)}`))
    .get()) !== undefined;
