import { and, desc, eq, gt, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { apiKeys, memberships, organizations } from "./organization-tables";
import { users } from "./schema";
import { mayHoldSession, notDisabled } from "./standing";

/** API keys (db/organization-tables.ts apiKeys; auth/api-keys/). Times are Dates; the key itself is never here, only its hash. */

export type ApiKey = typeof apiKeys.$inferSelect;
export type ApiKeyOwner = { type: "user"; id: string } | { type: "organization"; id: string };

const ownedBy = (owner: ApiKeyOwner) => (owner.type === "user" ? eq(apiKeys.userId, owner.id) : eq(apiKeys.orgId, owner.id));
const live = (now: Date) => and(isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now)));

/**
 * Inserts the key only while its owner has fewer than `max` live keys (unrevoked, unexpired), its owner
 * exists (a user who may hold a session, or the organization) and `onlyIf` holds (the creator's
 * membership and role, for an organization's key): one statement, so concurrent creations cannot pass
 * the bound. Returns the inserted id, or nothing.
 */
export function insertApiKey(db: Db, row: ApiKey, max: number, onlyIf?: SQL) {
  const value = (v: unknown, name: string) => sql`${v}`.as(name);
  const owner: ApiKeyOwner = row.userId ? { type: "user", id: row.userId } : { type: "organization", id: row.orgId! };
  // Live keys under `max`; and every row the owner has until the cron removes dead ones under
  // KEPT_PER_LIVE times that, so creating and revoking in a loop cannot grow the table without bound.
  const below = and(
    sql`(SELECT count(*) FROM ${apiKeys} WHERE ${and(ownedBy(owner), live(row.createdAt))}) < ${max}`,
    sql`(SELECT count(*) FROM ${apiKeys} WHERE ${ownedBy(owner)}) < ${max * KEPT_PER_LIVE}`,
  );
  const fields = {
    id: value(row.id, "id"),
    keyHash: value(row.keyHash, "key_hash"),
    start: value(row.start, "start"),
    name: value(row.name, "name"),
    userId: value(row.userId, "user_id"),
    orgId: value(row.orgId, "org_id"),
    createdBy: value(row.createdBy, "created_by"),
    scopes: value(JSON.stringify(row.scopes), "scopes"),
    createdAt: value(row.createdAt.getTime(), "created_at"),
    expiresAt: value(row.expiresAt?.getTime() ?? null, "expires_at"),
    revokedAt: value(null, "revoked_at"),
    lastUsedAt: value(null, "last_used_at"),
  };
  const from =
    owner.type === "user"
      ? db
          .select(fields)
          .from(users)
          .where(and(eq(users.id, owner.id), notDisabled(), below, onlyIf))
      : db
          .select(fields)
          .from(organizations)
          .where(and(eq(organizations.id, owner.id), below, onlyIf));
  return db.insert(apiKeys).select(from).returning({ id: apiKeys.id });
}

/** The creator is still a member of `orgId` with `role` when the key is written. */
export const stillMember = (orgId: string, userId: string, role: string) =>
  sql`EXISTS (SELECT 1 FROM ${memberships} WHERE ${and(eq(memberships.orgId, orgId), eq(memberships.userId, userId), eq(memberships.role, role))})`;

/**
 * The owner's keys: unrevoked ones first (at most 100 live, so never hidden by the limit), newest
 * first; then revoked ones until the cron removes them.
 */
export function listApiKeys(db: Db, owner: ApiKeyOwner, limit: number) {
  return db
    .select()
    .from(apiKeys)
    .where(ownedBy(owner))
    .orderBy(sql`${apiKeys.revokedAt} IS NOT NULL`, desc(apiKeys.createdAt), desc(apiKeys.id))
    .limit(limit)
    .all();
}

export function findApiKey(db: Db, id: string) {
  return db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
}

/** Revokes the key if it is not already; returns it when this call revoked it. */
export function revokeApiKey(db: Db, id: string, now: Date) {
  return db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning()
    .get();
}

/**
 * A password reset's statement (auth/mail/recovery-holds.ts reclaimStatements): every live key the user owns, and every
 * organization key it created (whoever held the account made them), ends with the rest. */
export function revokeUserApiKeys(db: Db, userId: string, now: Date, onlyIf: SQL) {
  return db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(or(eq(apiKeys.userId, userId), eq(apiKeys.createdBy, userId)), isNull(apiKeys.revokedAt), onlyIf))
    .returning({ id: apiKeys.id });
}

/**
 * The exchange's one read: the key by its hash, with its owner's standing, in one statement. A user's
 * row is joined only while the account may hold a session (its roles come with it, as they are now);
 * an organization's only while it exists. An owner missing from the join is an owner gone.
 */
export function keyForExchange(db: Db, keyHash: string, requireVerified: boolean) {
  return db
    .select({
      id: apiKeys.id,
      userId: apiKeys.userId,
      orgId: apiKeys.orgId,
      scopes: apiKeys.scopes,
      expiresAt: apiKeys.expiresAt,
      revokedAt: apiKeys.revokedAt,
      lastUsedAt: apiKeys.lastUsedAt,
      userRoles: users.roles,
      orgSlug: organizations.slug,
    })
    .from(apiKeys)
    .leftJoin(users, and(eq(users.id, apiKeys.userId), mayHoldSession(requireVerified)))
    .leftJoin(organizations, eq(organizations.id, apiKeys.orgId))
    .where(eq(apiKeys.keyHash, keyHash))
    .get();
}

/** Records a use, unless one was recorded within `everyMs`: concurrent exchanges write it once. */
export function touchApiKey(db: Db, id: string, now: Date, everyMs: number) {
  return db
    .update(apiKeys)
    .set({ lastUsedAt: now })
    .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, new Date(now.getTime() - everyMs)))));
}

/** The cron: keys revoked, or expired, before `before`. */
export async function deleteOldApiKeys(db: Db, before: Date): Promise<number> {
  const gone = await db
    .delete(apiKeys)
    .where(or(lt(apiKeys.revokedAt, before), lt(apiKeys.expiresAt, before)))
    .returning({ id: apiKeys.id });
  return gone.length;
}

/** Rows an owner may have, live or dead (until the cron removes them), per live key allowed. */
export const KEPT_PER_LIVE = 3;

/** Whether the owner is at either bound of insertApiKey (to say why an insert did not happen). */
export async function atKeyBound(db: Db, owner: ApiKeyOwner, now: Date, max: number): Promise<boolean> {
  const row = await db
    .select({ live: sql<number>`count(*) FILTER (WHERE ${live(now)})`, all: sql<number>`count(*)` })
    .from(apiKeys)
    .where(ownedBy(owner))
    .get();
  return (row?.live ?? 0) >= max || (row?.all ?? 0) >= max * KEPT_PER_LIVE;
}
