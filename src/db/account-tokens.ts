import { and, eq, exists, gt, isNull, sql, type SQL } from "drizzle-orm";
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
          })
          .from(users)
          .where(and(who, isNull(users.disabledAt), sql`${users.email} IS NOT NULL`)),
      )
      .returning({ userId: accountTokens.userId, email: accountTokens.email }),
  ]);
  return inserted[0];
}

/** Whether a token could be used now (a cheap read before spending a password hash on it). */
export async function isUsable(db: Db, tokenHash: string, purpose: TokenPurpose, now: Date): Promise<boolean> {
  const row = await db
    .select({ h: accountTokens.tokenHash })
    .from(accountTokens)
    .where(and(eq(accountTokens.tokenHash, tokenHash), eq(accountTokens.purpose, purpose), isNull(accountTokens.usedAt), gt(accountTokens.expiresAt, now)))
    .get();
  return row !== undefined;
}

/**
 * Uses a token, in one conditional statement: of two requests with one token exactly one gets the
 * row. Nothing for a token that is unknown, used, superseded, expired or of another purpose.
 */
export function consumeAccountToken(db: Db, tokenHash: string, purpose: TokenPurpose, now: Date) {
  return db
    .update(accountTokens)
    .set({ usedAt: now })
    .where(and(eq(accountTokens.tokenHash, tokenHash), eq(accountTokens.purpose, purpose), isNull(accountTokens.usedAt), gt(accountTokens.expiresAt, now)))
    .returning({ userId: accountTokens.userId, email: accountTokens.email });
}

/** True in a batch after consumeAccountToken took this token at `now`: later statements depend on it. */
export const consumedAt = (db: Db, tokenHash: string, now: Date) =>
  exists(db.select({ h: accountTokens.tokenHash }).from(accountTokens).where(and(eq(accountTokens.tokenHash, tokenHash), eq(accountTokens.usedAt, now))));
