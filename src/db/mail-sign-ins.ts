import { and, desc, eq, exists, gt, isNull, lt, ne, notExists, type SQL, sql } from "drizzle-orm";
import { type MailSignIn, mailSignIns } from "./access-tables";
import type { Db } from "./client";
import { users } from "./schema";
import { notDisabled } from "./standing";

/** Queries for sign-in by mail (auth/mail-sign-in/): one row per message, only hashes stored. */

export type { MailSignIn };

export interface NewMailSignIn {
  id: string;
  email: string;
  /** The account the message signs in to; null: a sign-up. */
  userId: string | null;
  tokenHash: string;
  codeHash: string;
  now: Date;
  expiresAt: Date;
}

/** The message's address still leads where it did when the message was made: the account (not disabled), or (a sign-up) nobody. */
const addressStill = (m: Pick<NewMailSignIn, "email" | "userId">) =>
  m.userId === null
    ? notExists(sql`(SELECT 1 FROM ${users} WHERE ${users.email} = ${m.email})`)
    : exists(sql`(SELECT 1 FROM ${users} WHERE ${and(eq(users.id, m.userId), eq(users.email, m.email), notDisabled())})`);

/**
 * The message's row, as an INSERT ... SELECT written only if `condition` holds (in a batch: the
 * address's mail budget has room) and the address still leads where it did.
 */
export function insertMailSignIn(db: Db, m: NewMailSignIn, condition: SQL) {
  return db
    .insert(mailSignIns)
    .select(
      db
        .select({
          id: sql`${m.id}`.as("id"),
          email: sql`${m.email}`.as("email"),
          userId: sql`${m.userId}`.as("user_id"),
          tokenHash: sql`${m.tokenHash}`.as("token_hash"),
          codeHash: sql`${m.codeHash}`.as("code_hash"),
          attempts: sql`0`.as("attempts"),
          createdAt: sql`${m.now.getTime()}`.as("created_at"),
          expiresAt: sql`${m.expiresAt.getTime()}`.as("expires_at"),
          usedAt: sql`NULL`.as("used_at"),
        })
        .from(sql`(SELECT 1)`)
        .where(and(addressStill(m), condition)),
    )
    .onConflictDoNothing()
    .returning({ id: mailSignIns.id });
}

/** True in a batch while no row with this id is stored (a queued job's message is made once). */
export const mailSignInNotStored = (db: Db, id: string) => notExists(db.select({ id: mailSignIns.id }).from(mailSignIns).where(eq(mailSignIns.id, id)));

/** True in a batch once the row with this id is stored. */
export const mailSignInStored = (db: Db, id: string) => exists(db.select({ id: mailSignIns.id }).from(mailSignIns).where(eq(mailSignIns.id, id)));

/** A newer message to the address ends the older unused ones (only once it is stored): a code from an earlier message is refused. */
export const supersedeOlder = (db: Db, email: string, id: string, now: Date) =>
  db
    .update(mailSignIns)
    .set({ usedAt: now })
    .where(and(eq(mailSignIns.email, email), isNull(mailSignIns.usedAt), ne(mailSignIns.id, id), mailSignInStored(db, id)));

/** The row with this id as it is (a read for a batch). */
export const mailSignInById = (db: Db, id: string) => db.select().from(mailSignIns).where(eq(mailSignIns.id, id));

/** Alive: unused, unexpired, attempts left, and no newer message to the address. */
const live = (now: Date, maxAttempts: number) =>
  and(
    isNull(mailSignIns.usedAt),
    gt(mailSignIns.expiresAt, now),
    lt(mailSignIns.attempts, maxAttempts),
    // Written out: in an UPDATE, drizzle may leave the outer table's columns unqualified, which the alias would capture.
    sql`NOT EXISTS (SELECT 1 FROM "mail_sign_ins" AS newer WHERE newer.email = "mail_sign_ins"."email" AND newer.created_at > "mail_sign_ins"."created_at")`,
  );

/** The address's newest message, if it is alive (a code is compared against it alone). */
export async function newestLiveFor(db: Db, email: string, now: Date, maxAttempts: number): Promise<MailSignIn | undefined> {
  const [row] = await db
    .select()
    .from(mailSignIns)
    .where(and(eq(mailSignIns.email, email), live(now, maxAttempts)))
    .orderBy(desc(mailSignIns.createdAt))
    .limit(1);
  return row;
}

/**
 * Uses a message: one conditional UPDATE ... RETURNING, by its link's hash or by its id and code's
 * hash, only while it is alive. Of two requests, exactly one gets the row back.
 */
export async function consumeMailSignIn(db: Db, by: { tokenHash: string } | { id: string; codeHash: string }, now: Date, maxAttempts: number) {
  const which = "tokenHash" in by ? eq(mailSignIns.tokenHash, by.tokenHash) : and(eq(mailSignIns.id, by.id), eq(mailSignIns.codeHash, by.codeHash));
  const [row] = await db
    .update(mailSignIns)
    .set({ usedAt: now })
    .where(and(which, live(now, maxAttempts)))
    .returning();
  return row;
}

/** A wrong code spends one attempt of the message; the last one ends it. Returns the attempts left (none: it is dead). */
export async function spendAttempt(db: Db, id: string, now: Date, maxAttempts: number): Promise<number> {
  const [row] = await db
    .update(mailSignIns)
    .set({
      attempts: sql`${mailSignIns.attempts} + 1`,
      usedAt: sql`CASE WHEN ${mailSignIns.attempts} + 1 >= ${maxAttempts} THEN ${now.getTime()} ELSE NULL END`,
    })
    .where(and(eq(mailSignIns.id, id), isNull(mailSignIns.usedAt)))
    .returning({ attempts: mailSignIns.attempts });
  return row ? Math.max(0, maxAttempts - row.attempts) : 0;
}

/** Housekeeping: messages past their expiry (used ones too: a used row is worth nothing after it); returns how many. */
export async function deleteExpiredMailSignIns(db: Db, before: Date): Promise<number> {
  return (await db.delete(mailSignIns).where(lt(mailSignIns.expiresAt, before)).returning({ id: mailSignIns.id })).length;
}

/** The account that has the address, as a mail sign-in needs to know it (guests have no address). */
export async function accountForAddress(db: Db, email: string) {
  const [row] = await db
    .select({ id: users.id, disabledAt: users.disabledAt, emailVerifiedAt: users.emailVerifiedAt, totpEnabledAt: users.totpEnabledAt })
    .from(users)
    .where(eq(users.email, email));
  return row;
}

/** On the user's row, for a session's write: the address is still the one the message went to. */
export const addressIs = (email: string) => eq(users.email, email);
