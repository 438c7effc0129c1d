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

/** Alive: unused, unexpired, and no newer message to the address (the link needs no more). */
const live = (now: Date) =>
  and(
    isNull(mailSignIns.usedAt),
    gt(mailSignIns.expiresAt, now),
    // Written out: in an UPDATE, drizzle may leave the outer table's columns unqualified, which the alias would capture.
    sql`NOT EXISTS (SELECT 1 FROM "mail_sign_ins" AS newer WHERE newer.email = "mail_sign_ins"."email" AND newer.created_at > "mail_sign_ins"."created_at")`,
  );

/** Alive with code attempts left: wrong codes end the code, never the link (a stranger who knows the address cannot kill it). */
const codeLive = (now: Date, maxAttempts: number) => and(live(now), lt(mailSignIns.attempts, maxAttempts));

/** The address's newest message, if it is alive (a code is compared against it alone). */
export async function newestLiveFor(db: Db, email: string, now: Date, maxAttempts: number): Promise<MailSignIn | undefined> {
  const [row] = await db
    .select()
    .from(mailSignIns)
    .where(and(eq(mailSignIns.email, email), codeLive(now, maxAttempts)))
    .orderBy(desc(mailSignIns.createdAt))
    .limit(1);
  return row;
}

/** Uses a message by its link: one conditional UPDATE ... RETURNING while it is alive. Of two requests, exactly one gets the row back. */
export async function consumeMailLink(db: Db, tokenHash: string, now: Date) {
  const [row] = await db
    .update(mailSignIns)
    .set({ usedAt: now })
    .where(and(eq(mailSignIns.tokenHash, tokenHash), live(now)))
    .returning();
  return row;
}

/**
 * Tries a code against a message in one statement: it spends an attempt while any is left, and uses
 * the message if the code is right. Concurrent tries are serialized by D1, so no more than
 * `maxAttempts` codes are ever compared against one message. Answers the row (used: `usedAt` set), or
 * none when the message is gone or out of attempts.
 */
export async function tryMailCode(db: Db, id: string, codeHash: string, now: Date, maxAttempts: number) {
  const [row] = await db
    .update(mailSignIns)
    .set({
      attempts: sql`${mailSignIns.attempts} + 1`,
      usedAt: sql`CASE WHEN ${mailSignIns.codeHash} = ${codeHash} THEN ${now.getTime()} ELSE NULL END`,
    })
    .where(and(eq(mailSignIns.id, id), codeLive(now, maxAttempts)))
    .returning();
  return row;
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
