import { and, count, desc, eq, gt, isNull, lt, ne, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { invitations, memberships, organizations } from "./organization-tables";
import { users } from "./schema";

/**
 * Invitations to an organization (auth/organizations/invitations.ts). Pending = not accepted, not
 * revoked, not expired. Every rule that two requests could race on is a condition of the one
 * statement that writes: the pending cap, "not a member yet", the accepting account's verified address.
 */

export type Invitation = typeof invitations.$inferSelect;

/** At most this many pending invitations per organization (the insert counts them). */
export const MAX_PENDING_INVITATIONS = 100;
/** A user belongs to at most this many organizations (the contract's cap, which accepting respects too). */
export const MAX_ORGANIZATIONS_PER_USER = 100;

const pendingAt = (now: Date) => and(isNull(invitations.acceptedAt), isNull(invitations.revokedAt), gt(invitations.expiresAt, now))!;

/** An account whose verified address is `email` is a member of the organization. */
const verifiedMemberWith = (orgId: string, email: string) =>
  sql`EXISTS (SELECT 1 FROM ${memberships} JOIN ${users} ON ${users.id} = ${memberships.userId} WHERE ${memberships.orgId} = ${orgId} AND ${users.email} = ${email} AND ${users.emailVerifiedAt} IS NOT NULL)`;

/** Pending invitations of the organization to other addresses than `email` (a re-invite replaces its own). */
const othersPending = (orgId: string, email: string, now: Date) => and(eq(invitations.orgId, orgId), ne(invitations.email, email), pendingAt(now))!;

export interface NewInvitation {
  id: string;
  orgId: string;
  email: string;
  role: string;
  invitedBy: string;
  tokenHash: string;
  now: Date;
  expiresAt: Date;
}

/**
 * The invitation's statements, for one batch: the insert, only while the inviter still holds the
 * role their check read, no verified account with the address is a member, and fewer than
 * MAX_PENDING_INVITATIONS others are pending; then (only if it was stored) the end of the pending
 * invitation to the same address it replaces; then what tells a refusal apart, and what the mail names.
 */
export function inviteStatements(db: Db, row: NewInvitation, inviterRole: string) {
  const { now } = row;
  const value = (v: unknown, name: string) => sql`${v}`.as(name);
  const inserted = db
    .insert(invitations)
    .select(
      db
        .select({
          id: value(row.id, "id"),
          orgId: value(row.orgId, "org_id"),
          email: value(row.email, "email"),
          role: value(row.role, "role"),
          invitedBy: value(row.invitedBy, "invited_by"),
          tokenHash: value(row.tokenHash, "token_hash"),
          createdAt: value(now.getTime(), "created_at"),
          expiresAt: value(row.expiresAt.getTime(), "expires_at"),
          acceptedAt: sql`NULL`.as("accepted_at"),
          acceptedBy: sql`NULL`.as("accepted_by"),
          revokedAt: sql`NULL`.as("revoked_at"),
        })
        .from(sql`(SELECT 1)`)
        .where(
          and(
            sql`EXISTS (SELECT 1 FROM ${memberships} WHERE ${memberships.orgId} = ${row.orgId} AND ${memberships.userId} = ${row.invitedBy} AND ${memberships.role} = ${inviterRole})`,
            sql`NOT ${verifiedMemberWith(row.orgId, row.email)}`,
            sql`(SELECT count(*) FROM ${invitations} WHERE ${othersPending(row.orgId, row.email, now)}) < ${MAX_PENDING_INVITATIONS}`,
          ),
        ),
    )
    .returning();
  const replaced = db
    .update(invitations)
    .set({ revokedAt: now })
    .where(
      and(
        eq(invitations.orgId, row.orgId),
        eq(invitations.email, row.email),
        ne(invitations.id, row.id),
        pendingAt(now),
        sql`EXISTS (SELECT 1 FROM ${invitations} AS fresh WHERE fresh.id = ${row.id})`,
      ),
    )
    .returning({ id: invitations.id });
  return {
    inserted,
    replaced,
    member: db.select({ yes: sql<number>`${verifiedMemberWith(row.orgId, row.email)}` }).from(sql`(SELECT 1)`),
    pending: db
      .select({ n: count() })
      .from(invitations)
      .where(othersPending(row.orgId, row.email, now)),
    names: db
      .select({ org: organizations.name, inviter: users.username })
      .from(organizations)
      .innerJoin(users, eq(users.id, row.invitedBy))
      .where(eq(organizations.id, row.orgId)),
  };
}

/** The organization's pending invitations, newest first (at most MAX_PENDING_INVITATIONS exist). */
export const pendingInvitations = (db: Db, orgId: string, now: Date) =>
  db
    .select()
    .from(invitations)
    .where(and(eq(invitations.orgId, orgId), pendingAt(now)))
    .orderBy(desc(invitations.createdAt), desc(invitations.id))
    .limit(MAX_PENDING_INVITATIONS)
    .all();

/** One pending invitation of the organization. */
export const pendingInvitation = (db: Db, orgId: string, id: string, now: Date) =>
  db
    .select()
    .from(invitations)
    .where(and(eq(invitations.orgId, orgId), eq(invitations.id, id), pendingAt(now)))
    .get();

/** Revokes the invitation if it is still pending; returns it then. */
export const revokePending = (db: Db, orgId: string, id: string, now: Date) =>
  db
    .update(invitations)
    .set({ revokedAt: now })
    .where(and(eq(invitations.orgId, orgId), eq(invitations.id, id), pendingAt(now)))
    .returning({ id: invitations.id });

/** The invitation a link's token names, with its organization, as it is now. */
export const invitationByHash = (db: Db, tokenHash: string) =>
  db
    .select({ invitation: invitations, org: { name: organizations.name, slug: organizations.slug, createdAt: organizations.createdAt } })
    .from(invitations)
    .innerJoin(organizations, eq(organizations.id, invitations.orgId))
    .where(eq(invitations.tokenHash, tokenHash))
    .get();

export const isPending = (i: Invitation, now: Date) => !i.acceptedAt && !i.revokedAt && i.expiresAt > now;

/**
 * For the statement right after `joined` in the accepting batch: true only if that insert added the
 * membership, so in this request. It reads SQLite's changes() (the rows the previous statement of the
 * connection changed: a batch runs its statements in order, in one transaction), because two
 * accepts of one token by one user within one millisecond leave nothing else to tell them apart:
 * the loser's batch finds the invitation accepted by that user at that very time too.
 */
export const joinedJustNow = (tokenHash: string, userId: string, now: Date): SQL =>
  and(
    sql`EXISTS (SELECT 1 FROM ${invitations} WHERE ${invitations.tokenHash} = ${tokenHash} AND ${invitations.acceptedBy} = ${userId} AND ${invitations.acceptedAt} = ${now.getTime()})`,
    sql`changes() > 0`,
  )!;

/**
 * Accepting, for one batch, in this order: the conditional UPDATE that uses the invitation (still
 * pending, the caller's verified address is the invited one, the caller is no member yet and under
 * the organizations cap: of two requests, one wins), then the membership it grants, only if that
 * update happened (a second request in the same millisecond finds the membership there: its insert
 * conflicts and is dropped).
 */
export function acceptStatements(db: Db, tokenHash: string, userId: string, now: Date) {
  const notMember = sql`NOT EXISTS (SELECT 1 FROM ${memberships} WHERE ${memberships.orgId} = ${invitations.orgId} AND ${memberships.userId} = ${userId})`;
  return {
    accepted: db
      .update(invitations)
      .set({ acceptedAt: now, acceptedBy: userId })
      .where(
        and(
          eq(invitations.tokenHash, tokenHash),
          pendingAt(now),
          sql`EXISTS (SELECT 1 FROM ${users} WHERE ${users.id} = ${userId} AND ${users.email} = ${invitations.email} AND ${users.emailVerifiedAt} IS NOT NULL)`,
          notMember,
          sql`(SELECT count(*) FROM ${memberships} WHERE ${memberships.userId} = ${userId}) < ${MAX_ORGANIZATIONS_PER_USER}`,
        ),
      )
      .returning({ id: invitations.id, role: invitations.role }),
    joined: db
      .insert(memberships)
      .select(
        db
          .select({
            orgId: invitations.orgId,
            userId: sql`${userId}`.as("user_id"),
            role: invitations.role,
            createdAt: sql`${now.getTime()}`.as("created_at"),
          })
          .from(invitations)
          .where(and(eq(invitations.tokenHash, tokenHash), eq(invitations.acceptedBy, userId), eq(invitations.acceptedAt, now))),
      )
      .onConflictDoNothing()
      .returning({ role: memberships.role }),
  };
}

/** After the accepting writes: why they did not happen, if they did not. */
export function acceptRefusalReads(db: Db, tokenHash: string, orgId: string, userId: string) {
  return {
    invitation: db.select().from(invitations).where(eq(invitations.tokenHash, tokenHash)),
    caller: db
      .select({ email: users.email, verified: sql<number>`${users.emailVerifiedAt} IS NOT NULL` })
      .from(users)
      .where(eq(users.id, userId)),
    member: db
      .select({ n: count() })
      .from(memberships)
      .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId))),
    memberships: db.select({ n: count() }).from(memberships).where(eq(memberships.userId, userId)),
  };
}

/** Housekeeping: invitations accepted, revoked or expired before `before`; returns how many. */
export async function deleteOldInvitations(db: Db, before: Date): Promise<number> {
  const gone = await db
    .delete(invitations)
    .where(or(lt(invitations.acceptedAt, before), lt(invitations.revokedAt, before), lt(invitations.expiresAt, before)))
    .returning({ id: invitations.id });
  return gone.length;
}
