import { and, desc, eq, gt, isNull, lt, ne, or, sql } from "drizzle-orm";
import type { Db } from "./client";
import { rotatedRefreshTokens, sessions, users } from "./schema";

export type NewSession = typeof sessions.$inferInsert;

const live = (now: Date) => and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now));
const revokedColumns = { id: sessions.id, userId: sessions.userId, accessExpiresAt: sessions.accessExpiresAt };

export function insertSession(db: Db, row: NewSession) {
  return db.insert(sessions).values(row);
}

/**
 * Rotates a refresh token in one batch (one implicit transaction, no interactive transaction on D1):
 * 1. the conditional UPDATE swaps the hash only if the old one is current, live and unexpired:
 *    of two concurrent refreshes with one token, exactly one matches;
 * 2. the old hash is remembered as rotated, only if step 1 happened;
 * 3. the user is read back for the new access token's claims.
 * Returns the user and session, or null when the old hash was not a live session's current hash.
 */
export interface Rotation {
  oldHash: string;
  newHash: string;
  now: Date;
  accessExpiresAt: Date; // of the access token about to be issued
  rotatedBy: string; // fingerprint of the rotating client
}

export async function rotateRefreshToken(db: Db, { oldHash, newHash, now, accessExpiresAt, rotatedBy }: Rotation) {
  const [updated, , user] = await db.batch([
    db
      .update(sessions)
      .set({ refreshTokenHash: newHash, lastUsedAt: now, accessExpiresAt })
      .where(and(eq(sessions.refreshTokenHash, oldHash), live(now)))
      .returning({ id: sessions.id, expiresAt: sessions.expiresAt }),
    db.insert(rotatedRefreshTokens).select(
      db
        .select({
          tokenHash: sql`${oldHash}`.as("token_hash"),
          sessionId: sessions.id,
          rotatedAt: sql`${now.getTime()}`.as("rotated_at"),
          rotatedBy: sql`${rotatedBy}`.as("rotated_by"),
        })
        .from(sessions)
        .where(eq(sessions.refreshTokenHash, newHash)),
    ),
    db
      .select({ id: users.id, username: users.username, roles: users.roles })
      .from(users)
      .innerJoin(sessions, eq(sessions.userId, users.id))
      .where(eq(sessions.refreshTokenHash, newHash)),
  ]);
  const session = updated[0];
  const owner = user[0];
  return session && owner ? { session, user: owner } : null;
}

/** The session a rotated (already used) refresh token belonged to, and when it was rotated. */
export async function findRotated(db: Db, tokenHash: string) {
  return db.select().from(rotatedRefreshTokens).where(eq(rotatedRefreshTokens.tokenHash, tokenHash)).get();
}

/** Revokes one live session, found by id (optionally only the user's own) or by its current refresh token hash. */
export async function revokeSession(db: Db, where: { id: string; userId?: string } | { refreshTokenHash: string }, now: Date) {
  const match =
    "refreshTokenHash" in where
      ? eq(sessions.refreshTokenHash, where.refreshTokenHash)
      : and(eq(sessions.id, where.id), where.userId ? eq(sessions.userId, where.userId) : undefined);
  return db.update(sessions).set({ revokedAt: now }).where(and(match, live(now))).returning(revokedColumns);
}

/** Revokes every live session of a user, except one if given. */
export function revokeUserSessions(db: Db, userId: string, now: Date, exceptId?: string) {
  return db
    .update(sessions)
    .set({ revokedAt: now })
    .where(and(eq(sessions.userId, userId), exceptId ? ne(sessions.id, exceptId) : undefined, live(now)))
    .returning(revokedColumns);
}

export async function listLiveSessions(db: Db, userId: string, now: Date) {
  return db
    .select({ id: sessions.id, createdAt: sessions.createdAt, lastUsedAt: sessions.lastUsedAt, userAgent: sessions.userAgent, expiresAt: sessions.expiresAt })
    .from(sessions)
    .where(and(eq(sessions.userId, userId), live(now)))
    .orderBy(desc(sessions.lastUsedAt))
    .all();
}

/** Housekeeping: drops sessions (and, by cascade, their rotated hashes) dead for longer than `keepMs`. */
export async function deleteDeadSessions(db: Db, now: Date, keepMs: number) {
  const before = new Date(now.getTime() - keepMs);
  const gone = await db
    .delete(sessions)
    .where(or(lt(sessions.expiresAt, before), lt(sessions.revokedAt, before)))
    .returning({ id: sessions.id });
  return gone.length;
}
