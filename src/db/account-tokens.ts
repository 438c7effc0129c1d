import { and, eq, exists, gt, inArray, isNull, sql, type SQL } from "drizzle-orm";
import type { Db } from "./client";
import { accountTokens, users } from "./schema";

export type TokenPurpose = (typeof accountTokens.$inferSelect)["purpose"];

/**
 * Issues a mailed token for the user that `who` selects (by id, or by email for a password reset),
 * in one batch: older live tokens of the same purpose are superseded, then the new hash is stored.
 * For an address that matches nobody both statements run on no row: the same work. Returns the
 * user id and address the token was issued for, or nothing.
 */
export async function issueAccountToken(db: Db, who: SQL, t: { tokenHash: string; purpose: TokenPurpose; email?: string; now: Date; expiresAt: Date }) {
  const [, inserted] = await db.batch([
    db
      .update(accountTokens)
      .set({ usedAt: t.now })
      .where(and(sql`${accountTokens.userId} IN (SELECT ${users.id} FROM ${users} WHERE ${who})`, eq(accountTokens.purpose, t.purpose), isNull(accountTokens.usedAt))),
    db
      .insert(accountTokens)
      .select(
        db
          .select({
            tokenHash: sql`${t.tokenHash}`.as("token_hash"),
            userId: users.id,
            purpose: sql`${t.purpose}`.as("purpose"),
            email: t.email === undefined ? sql`${users.email}`.as("email") : sql`${t.email}`.as("email"),
            createdAt: sql`${t.now.getTime()}`.as("created_at"),
            expiresAt: sql`${t.expiresAt.getTime()}`.as("expires_at"),
            usedAt: sql`NULL`.as("used_at"),
            usedBy: sql`NULL`.as("used_by"),
          })
          .from(users)
          .where(and(who, isNull(users.disabledAt), sql`${users.email} IS NOT NULL`)),
      )
      .returning({ userId: accountTokens.userId, email: accountTokens.email }),
  ]);
  return inserted[0];
}

/** A link works for a live, unused, unexpired token of an account that is not disabled. */
const usable = (tokenHash: string, purpose: TokenPurpose, now: Date) =>
  and(
    eq(accountTokens.tokenHash, tokenHash),
    eq(accountTokens.purpose, purpose),
    isNull(accountTokens.usedAt),
    gt(accountTokens.expiresAt, now),
    sql`${accountTokens.userId} IN (SELECT ${users.id} FROM ${users} WHERE ${users.disabledAt} IS NULL)`,
  );

/** The user and address a token could be used for now (a cheap read before the batch that uses it). */
export async function usableFor(db: Db, tokenHash: string, purpose: TokenPurpose, now: Date) {
  return db.select({ userId: accountTokens.userId, email: accountTokens.email }).from(accountTokens).where(usable(tokenHash, purpose, now)).get();
}

/** Ends the user's live links of these purposes (a password reset or change, an email change, logout-all). */
export function endLinks(db: Db, userId: string, purposes: TokenPurpose[], now: Date, onlyIf?: SQL) {
  return db
    .update(accountTokens)
    .set({ usedAt: now })
    .where(and(eq(accountTokens.userId, userId), inArray(accountTokens.purpose, purposes), isNull(accountTokens.usedAt), onlyIf));
}

/**
 * Uses a token, in one conditional statement: of two requests with one token exactly one gets the
 * row. Nothing for a token that is unknown, used, superseded, expired or of another purpose.
 */
export function consumeAccountToken(db: Db, tokenHash: string, purpose: TokenPurpose, now: Date, usedBy: string) {
  return db
    .update(accountTokens)
    .set({ usedAt: now, usedBy })
    .where(usable(tokenHash, purpose, now))
    .returning({ userId: accountTokens.userId, email: accountTokens.email });
}

/**
 * True in a batch after consumeAccountToken took this token for this request (`usedBy`, a random id:
 * two requests can share a clock reading, never this): later statements depend on it.
 */
export const consumedBy = (db: Db, tokenHash: string, usedBy: string) =>
  exists(db.select({ h: accountTokens.tokenHash }).from(accountTokens).where(and(eq(accountTokens.tokenHash, tokenHash), eq(accountTokens.usedBy, usedBy))));
