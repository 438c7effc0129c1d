import { and, eq, exists, isNull, lte, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { identities, recoveryHolds, users } from "./schema";

/** Queries for held recoveries (auth/mail/recovery-holds.ts): what a mailbox alone asked to lower while TOTP was on. */

export type HoldKind = (typeof recoveryHolds.$inferSelect)["kind"];

export interface NewHold {
  userId: string;
  kind: HoldKind;
  /** The TOTP the hold removes: written only while that very TOTP is on. */
  totpEnabledAt: Date;
  passwordHash?: string;
  mailbox?: string;
  now: Date;
  dueAt: Date;
}

/**
 * Holds a lowering for the account, only while the TOTP it names is on and `onlyIf` holds (in a
 * batch: the link was used by this request). One row per account: a later request keeps the wait
 * that was announced first (it never starts over, nor ends sooner), and a held reset's password is
 * the newest one asked for. Returns the row as it now stands, or nothing.
 */
export function holdRecovery(db: Db, h: NewHold, onlyIf: SQL) {
  return db
    .insert(recoveryHolds)
    .select(
      db
        .select({
          userId: users.id,
          kind: sql`${h.kind}`.as("kind"),
          totpEnabledAt: users.totpEnabledAt,
          passwordHash: sql`${h.passwordHash ?? null}`.as("password_hash"),
          mailbox: sql`${h.mailbox ?? null}`.as("mailbox"),
          requestedAt: sql`${h.now.getTime()}`.as("requested_at"),
          dueAt: sql`${h.dueAt.getTime()}`.as("due_at"),
          appliedBy: sql`NULL`.as("applied_by"),
        })
        .from(users)
        .where(and(eq(users.id, h.userId), eq(users.totpEnabledAt, h.totpEnabledAt), onlyIf)),
    )
    .onConflictDoUpdate({
      target: recoveryHolds.userId,
      set: {
        kind: sql`CASE WHEN excluded.password_hash IS NULL THEN ${recoveryHolds.kind} ELSE excluded.kind END`,
        passwordHash: sql`coalesce(excluded.password_hash, ${recoveryHolds.passwordHash})`,
        mailbox: sql`coalesce(excluded.mailbox, ${recoveryHolds.mailbox})`,
        // A hold left for another TOTP (moot: the cron would drop it) starts over for this one.
        requestedAt: sql`CASE WHEN ${recoveryHolds.totpEnabledAt} = excluded.totp_enabled_at THEN ${recoveryHolds.requestedAt} ELSE excluded.requested_at END`,
        dueAt: sql`CASE WHEN ${recoveryHolds.totpEnabledAt} = excluded.totp_enabled_at THEN ${recoveryHolds.dueAt} ELSE excluded.due_at END`,
        totpEnabledAt: sql`excluded.totp_enabled_at`,
      },
    })
    .returning({ kind: recoveryHolds.kind, dueAt: recoveryHolds.dueAt });
}

/** A sign-in with a second factor (or any proof the caller names in `onlyIf`) cancels the account's hold. */
export function cancelHold(db: Db, userId: string, onlyIf?: SQL) {
  return db
    .delete(recoveryHolds)
    .where(and(eq(recoveryHolds.userId, userId), onlyIf))
    .returning({ kind: recoveryHolds.kind, dueAt: recoveryHolds.dueAt });
}

/** Holds whose wait is over, oldest first: what the cron applies. */
export function dueHolds(db: Db, now: Date, limit: number) {
  return db.select().from(recoveryHolds).where(lte(recoveryHolds.dueAt, now)).orderBy(recoveryHolds.dueAt).limit(limit);
}

export type Hold = typeof recoveryHolds.$inferSelect;

/**
 * True while the hold still means what it did: the TOTP it names is still on and, for a held reset,
 * the address the reset link went to is still the account's. A hold that is not is moot.
 */
const stillMeant = sql`EXISTS (SELECT 1 FROM ${users} WHERE ${users.id} = ${recoveryHolds.userId} AND ${users.totpEnabledAt} = ${recoveryHolds.totpEnabledAt} AND (${recoveryHolds.passwordHash} IS NULL OR ${users.email} = ${recoveryHolds.mailbox}))`;

/**
 * Takes a due hold for this run (`by`, a random id), only if it is still the row `read` (a later
 * request may have joined it meanwhile: then the next run applies what it became) and still meant;
 * the batch's later writes depend on `claimedBy`. Nothing when it was cancelled or applied meanwhile.
 */
export function claimHold(db: Db, read: Hold, now: Date, by: string) {
  return db
    .update(recoveryHolds)
    .set({ appliedBy: by })
    .where(
      and(
        eq(recoveryHolds.userId, read.userId),
        lte(recoveryHolds.dueAt, now),
        isNull(recoveryHolds.appliedBy),
        eq(recoveryHolds.totpEnabledAt, read.totpEnabledAt),
        eq(recoveryHolds.kind, read.kind),
        sql`${recoveryHolds.passwordHash} IS ${read.passwordHash}`,
        stillMeant,
      ),
    )
    .returning({ userId: recoveryHolds.userId });
}

/** True in a batch once this run took the hold. */
export const claimedBy = (db: Db, userId: string, by: string) =>
  exists(
    db
      .select({ id: recoveryHolds.userId })
      .from(recoveryHolds)
      .where(and(eq(recoveryHolds.userId, userId), eq(recoveryHolds.appliedBy, by))),
  );

/** Drops a due hold this run applied, or one that is moot (its TOTP is gone, or its reset's address); returns it. */
export const dropDueHold = (db: Db, userId: string, now: Date, by: string) =>
  db
    .delete(recoveryHolds)
    .where(and(eq(recoveryHolds.userId, userId), lte(recoveryHolds.dueAt, now), or(eq(recoveryHolds.appliedBy, by), sql`NOT ${stillMeant}`)))
    .returning({ userId: recoveryHolds.userId });

/**
 * Every address the account can be reached at: its own, and each address a linked provider vouches
 * for. A notice that a mailbox alone cannot silence goes to all of them.
 */
export async function channelsOf(db: Db, userId: string): Promise<string[]> {
  const rows = await db
    .select({ own: users.email, vouched: identities.email })
    .from(users)
    .leftJoin(identities, and(eq(identities.userId, users.id), eq(identities.emailVerified, true)))
    .where(eq(users.id, userId));
  const all = rows.flatMap((r) => [r.own, r.vouched]).filter((a): a is string => typeof a === "string" && a.length > 0);
  return [...new Set(all.map((a) => a.toLowerCase()))];
}
