import { and, eq, exists, gt, isNotNull, isNull, lt, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { challenges, users } from "./schema";

/** Queries for TOTP, recovery codes and challenges (auth/totp/mfa.ts, auth/passkeys/passkeys.ts). */

export type ChallengePurpose = (typeof challenges.$inferInsert)["purpose"];

/** A second-factor proof as stored state sees it: a TOTP step, or the SHA-256 of a recovery code. */
export type Proof = { step: number } | { recoveryHash: string };

const totpOn = isNotNull(users.totpEnabledAt);

/** True while `proof` can still be spent for the user `userId` (an SQL value, for conditions). */
export function usable(db: Db, userId: SQL | string, proof: Proof) {
  const same = typeof userId === "string" ? eq(users.id, userId) : sql`${users.id} = ${userId}`;
  if ("step" in proof)
    return exists(
      db
        .select({ id: users.id })
        .from(users)
        .where(and(same, totpOn, lt(users.totpLastStep, proof.step))),
    );
  const code = sql`EXISTS (SELECT 1 FROM json_each(${users.recoveryCodes}) WHERE value = ${proof.recoveryHash})`;
  return exists(
    db
      .select({ id: users.id })
      .from(users)
      .where(and(same, totpOn, code)),
  );
}

/**
 * Spends the proof: a TOTP step becomes the last one accepted (a code is good once), a recovery code
 * leaves the list. Only if it is still usable (of two requests with one code, one wins) and, in a
 * batch, only if `condition` holds. `passCheck`: the same write clears the login lock's failures
 * (a login's second step: a right code passes its check; one statement for both, on the same row).
 * Returns the recovery codes left, or no row.
 */
export function spendProof(db: Db, userId: string, proof: Proof, now: Date, condition?: SQL, { passCheck = false } = {}) {
  const spent =
    "step" in proof
      ? { totpLastStep: proof.step, updatedAt: now }
      : { recoveryCodes: sql`(SELECT json_group_array(value) FROM json_each(${users.recoveryCodes}) WHERE value <> ${proof.recoveryHash})`, updatedAt: now };
  const set = passCheck ? { ...spent, failedLogins: 0, lastFailedLoginAt: null, lockedUntil: null } : spent;
  return db
    .update(users)
    .set(set)
    .where(and(eq(users.id, userId), usable(db, userId, proof), condition))
    .returning({ recoveryCodesLeft: sql<number>`json_array_length(${users.recoveryCodes})` });
}

/**
 * A new secret awaiting its first code, and the session that set it up (totp_enabled_by: only that
 * session enables it); refused (no row) while TOTP is on: disable it first.
 */
export function storePendingTotp(db: Db, userId: string, sealed: string, now: Date, by: string) {
  return db
    .update(users)
    .set({ totpSecret: sealed, totpEnabledBy: by, updatedAt: now })
    .where(and(eq(users.id, userId), isNull(users.totpEnabledAt)))
    .returning({ id: users.id });
}

/**
 * Turns TOTP on with the pending secret that was checked (a newer setup meanwhile wins), the step of
 * the confirming code, and the hashes of new recovery codes: one statement, so two concurrent enables
 * cannot mix their codes.
 */
export function enableTotp(db: Db, userId: string, checkedSecret: string, step: number, recoveryHashes: string[], now: Date, by: string, onlyIf?: SQL) {
  return db
    .update(users)
    .set({ totpEnabledAt: now, totpEnabledBy: by, totpLastStep: step, recoveryCodes: recoveryHashes, updatedAt: now })
    .where(and(eq(users.id, userId), isNull(users.totpEnabledAt), eq(users.totpSecret, checkedSecret), onlyIf))
    .returning({ id: users.id });
}

const totpOff = { totpSecret: null, totpEnabledAt: null, totpEnabledBy: null, totpLastStep: 0, recoveryCodes: null };

/** Turns TOTP off (the step-up before it spent its proof). No row when it was off already. */
export function disableTotp(db: Db, userId: string, now: Date, onlyIf?: SQL) {
  return db
    .update(users)
    .set({ ...totpOff, updatedAt: now })
    .where(and(eq(users.id, userId), totpOn, onlyIf))
    .returning({ id: users.id });
}

/** A "this was not me" link: turns TOTP off if it is still the setup turned on at `enabledAt`, only if `onlyIf` holds. */
export function removeTotpEnabledAt(db: Db, userId: string, enabledAt: Date, now: Date, onlyIf: SQL) {
  return db
    .update(users)
    .set({ ...totpOff, updatedAt: now })
    .where(and(eq(users.id, userId), eq(users.totpEnabledAt, enabledAt), onlyIf))
    .returning({ id: users.id });
}

/** Ends the user's pending challenges (a login's second step, a passkey registration), only if `onlyIf` holds. */
export function endUserChallenges(db: Db, userId: string, now: Date, onlyIf: SQL) {
  return db
    .update(challenges)
    .set({ usedAt: now })
    .where(and(eq(challenges.userId, userId), isNull(challenges.usedAt), onlyIf));
}

/** For the user row's own conditions (an audit row's): TOTP was just turned on or off, by the write stamped `now`. */
export const totpTurnedAt = (on: boolean, now: Date) => and(eq(users.updatedAt, now), on ? isNotNull(users.totpEnabledAt) : isNull(users.totpEnabledAt))!;

export function insertChallenge(db: Db, row: typeof challenges.$inferInsert) {
  return db.insert(challenges).values(row);
}

const open = (id: string, purpose: ChallengePurpose, now: Date) =>
  and(eq(challenges.id, id), eq(challenges.purpose, purpose), isNull(challenges.usedAt), gt(challenges.expiresAt, now));

/**
 * The account of an open challenge (`who` for a read of users), with the challenge's own columns
 * under names of their own (a D1 batch keys rows by column name; users has a password_version too).
 */
export function challengeAccount(id: string, purpose: ChallengePurpose, now: Date) {
  const of = (column: SQL) => sql`(SELECT ${column} FROM ${challenges} WHERE ${open(id, purpose, now)})`;
  return {
    who: sql`${users.id} = ${of(sql.raw('"challenges"."user_id"'))}`,
    columns: {
      challengePasswordVersion: sql<number | null>`${of(sql.raw('"challenges"."password_version"'))}`.as("challenge_password_version"),
      challengeFirstFactor: sql<string | null>`${of(sql.raw('"challenges"."first_factor"'))}`.as("challenge_first_factor"),
    },
  };
}

export async function findChallenge(db: Db, id: string, purpose: ChallengePurpose, now: Date) {
  return db
    .select()
    .from(challenges)
    .where(open(id, purpose, now))
    .get();
}

/** A challenge that was used (for a retry of the request that used it). */
export async function findUsedChallenge(db: Db, id: string, purpose: ChallengePurpose) {
  return db
    .select()
    .from(challenges)
    .where(and(eq(challenges.id, id), eq(challenges.purpose, purpose), isNotNull(challenges.usedAt)))
    .get();
}

/**
 * Uses a challenge for this request (`usedBy`, a random id; `client`, its fingerprint): one conditional statement, so exactly
 * one of two requests wins. `only.userId`: the challenge must be that user's (a passkey registration);
 * `only.proof`: a login's second step also needs its proof still usable.
 */
export function consumeChallenge(
  db: Db,
  id: string,
  purpose: ChallengePurpose,
  now: Date,
  usedBy: string,
  only: { proof?: Proof; userId?: string } = {},
  client?: string,
) {
  return db
    .update(challenges)
    .set({ usedAt: now, usedBy, usedByClient: client })
    .where(
      and(
        open(id, purpose, now),
        only.userId ? eq(challenges.userId, only.userId) : undefined,
        only.proof ? usable(db, sql`${challenges.userId}`, only.proof) : undefined,
      ),
    )
    .returning({ userId: challenges.userId });
}

/**
 * True in a batch while this request holds the challenge (consumedBy) and `proof` is still usable: a
 * batch run again after the challenge was used checks the code's use again (auth/core/sign-in.ts).
 */
export const consumedWhileUsable = (db: Db, id: string, usedBy: string, userId: string, proof: Proof) =>
  and(consumedBy(db, id, usedBy), usable(db, userId, proof))!;

/** True in a batch after consumeChallenge took this challenge for this request. */
export const consumedBy = (db: Db, id: string, usedBy: string) =>
  exists(
    db
      .select({ id: challenges.id })
      .from(challenges)
      .where(and(eq(challenges.id, id), eq(challenges.usedBy, usedBy))),
  );

/** Counts a wrong code against a login's second step; the `max`-th ends it (the password is asked again). */
export function countChallengeFailure(db: Db, id: string, now: Date, max: number) {
  return db
    .update(challenges)
    .set({
      failures: sql`${challenges.failures} + 1`,
      usedAt: sql`CASE WHEN ${challenges.failures} + 1 >= ${max} THEN ${now.getTime()} ELSE ${challenges.usedAt} END`,
    })
    .where(eq(challenges.id, id))
    .returning({ failures: challenges.failures });
}

/** Drops challenges that expired before `before` (the daily cron); returns how many. */
export async function deleteExpiredChallenges(db: Db, before: Date): Promise<number> {
  return (await db.delete(challenges).where(lt(challenges.expiresAt, before)).returning({ id: challenges.id })).length;
}
