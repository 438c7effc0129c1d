import { and, eq, exists, gte, lt, notExists, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { sessions, users } from "./schema";
import { issuingColumns, ownerClaims } from "./session-rotation";
import { extendAccess, live, ownLiveSession, sessionLive } from "./sessions";

/**
 * Guests (auth/guests/, docs/guests.md): the upgrade's conditional writes, the flag a first way in
 * clears, and the cron's idle rule. Every write that ends a guest names `is_guest = 1` in its WHERE:
 * of two upgrades at once, exactly one finds a guest.
 */

const stillGuest = (id: string) => and(eq(users.id, id), eq(users.isGuest, true));

/** Which of the address and the username (regardless of case) another account has: checked before spending a hash. */
export async function takenByOthers(db: Db, email: string, username: string | null) {
  const rows = await db
    .select({ email: users.email, username: users.username })
    .from(users)
    .where(username ? sql`${users.email} = ${email} OR lower(${users.username}) = ${username.toLowerCase()}` : eq(users.email, email))
    .all();
  return { email: rows.some((r) => r.email === email), username: username !== null && rows.some((r) => r.username.toLowerCase() === username.toLowerCase()) };
}

export interface Upgrade {
  userId: string;
  sessionId: string;
  email: string; // lower-cased
  username: string | null; // null: stays without one
  passwordHash: string;
  now: Date;
}

/**
 * The address (unverified), the password and maybe a username in one conditional statement: only
 * while the account is still a guest and the asking session is live. The unique indexes refuse a taken
 * address or name (the whole batch then writes nothing). Returns the member's row, or no row.
 */
export function upgradeGuest(db: Db, u: Upgrade) {
  return db
    .update(users)
    .set({
      email: u.email,
      emailVerifiedAt: null,
      emailSetAt: u.now,
      emailSetBy: u.sessionId,
      ...(u.username !== null && { username: u.username }),
      passwordHash: u.passwordHash,
      passwordVersion: sql`${users.passwordVersion} + 1`,
      passwordSetAt: u.now,
      passwordSetBy: u.sessionId,
      isGuest: false,
      updatedAt: u.now,
    })
    .where(and(stillGuest(u.userId), sessionLive(db, u.sessionId, u.now)))
    .returning();
}

/** True in a batch once `userId` is a member whose row the statement stamped `now` wrote. */
export const upgradedAt = (db: Db, userId: string, now: Date) =>
  exists(
    db
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.id, userId), eq(users.isGuest, false), eq(users.updatedAt, now))),
  );

/**
 * A guest's first way in other than the upgrade (a passkey, a provider): the flag goes in the batch
 * that stores it, only if `stored` holds (the way in was written). A member's row is left alone.
 */
export function endGuest(db: Db, userId: string, now: Date, stored: SQL) {
  return db
    .update(users)
    .set({ isGuest: false, updatedAt: now })
    .where(and(stillGuest(userId), stored))
    .returning({ id: users.id });
}

/**
 * After an upgrade in the same batch: the asking session's next access token (its claims read back
 * as a refresh reads them, without `guest`), only if the upgrade landed. Like an organization switch.
 */
export function reissueAfterUpgrade(db: Db, s: { userId: string; sessionId: string; now: Date; accessExpiresAt: Date; requireVerified: boolean }) {
  return {
    session: db
      .update(sessions)
      .set({ accessExpiresAt: extendAccess(s.accessExpiresAt) })
      .where(and(ownLiveSession(s), upgradedAt(db, s.userId, s.now)))
      .returning(issuingColumns),
    owner: ownerClaims(db, and(eq(sessions.id, s.sessionId), live(s.now))),
  };
}

/**
 * The daily cron: guests created before `idleSince` none of whose sessions was used since (a refresh
 * or a sign-in stamps last_used_at). Members are never touched (`is_guest = 1`). Their sessions,
 * rotation history and challenges go with them (ON DELETE CASCADE). Returns how many.
 */
export async function deleteIdleGuests(db: Db, idleSince: Date): Promise<number> {
  const gone = await db
    .delete(users)
    .where(
      and(
        eq(users.isGuest, true),
        lt(users.createdAt, idleSince),
        notExists(
          db
            .select({ one: sql`1` })
            .from(sessions)
            .where(and(eq(sessions.userId, users.id), gte(sessions.lastUsedAt, idleSince))),
        ),
      ),
    )
    .returning({ id: users.id });
  return gone.length;
}
