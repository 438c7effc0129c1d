import { and, eq, getTableColumns, gt, isNotNull, isNull, lte, ne, or, type SQL, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { passwordChecks, type User, users } from "./schema";
import { type Room, roomColumns } from "./sign-in-room";

/** The account lock's queries (auth/core/lockout.ts): checks in flight, failures in a row, the lock. */

export interface LockPolicy {
  threshold: number; // failures in a row before the first lock
  baseMs: number; // first lock; each further failure doubles it
  maxMs: number; // no lock is ever longer
  windowMs: number; // a failure this long after the previous one starts the count again
  staleMs: number; // a check in flight this long is taken as dead (its worker stopped)
}

const failuresSoFar = (t: number, p: LockPolicy) =>
  sql`(CASE WHEN ${users.lastFailedLoginAt} IS NULL OR ${users.lastFailedLoginAt} < ${t - p.windowMs} THEN 0 ELSE ${users.failedLogins} END)`;

/**
 * Starts a login's password check, in one conditional statement: a row in password_checks, added
 * only while the account is not locked and failures so far plus checks in flight stay under the
 * threshold (after a lock runs out, one check at a time). So concurrent wrong guesses can never
 * exceed the threshold, and correct ones in flight are not failures. An id that matches no user
 * (unknown user) runs the same statement and adds nothing, for equal timing. Returns the check's id.
 */
export async function beginLoginCheck<E extends Record<string, SQL.Aliased> = Record<never, never>>(
  db: Db,
  who: SQL,
  now: Date,
  p: LockPolicy,
  extra?: E,
): Promise<{ check?: string; user?: User & Room & { [K in keyof E]: E[K]["_"]["type"] } }> {
  const id = crypto.randomUUID();
  // The check's subject is computed from the row, so the lookup and the check are one round trip.
  const subject = sql`'user:' || ${users.id}`;
  const inFlight = sql`(SELECT count(*) FROM ${passwordChecks} WHERE ${passwordChecks.subject} = ${subject} AND ${passwordChecks.startedAt} > ${now.getTime() - p.staleMs})`;
  const { started, found } = await batch(db, {
    started: db
      .insert(passwordChecks)
      .select(
        db
          .select({ id: sql`${id}`.as("id"), subject: subject.as("subject"), startedAt: sql`${now.getTime()}`.as("started_at") })
          .from(users)
          .where(
            and(
              who,
              or(isNull(users.lockedUntil), lte(users.lockedUntil, now)),
              sql`${inFlight} < max(${p.threshold} - ${failuresSoFar(now.getTime(), p)}, 1)`,
            ),
          ),
      )
      .returning({ id: passwordChecks.id }),
    // The account, with what its sign-in's batch may leave out (db/sign-in-room.ts) and the caller's columns.
    found: db
      .select({ ...getTableColumns(users), ...roomColumns(now), ...(extra ?? {}) })
      .from(users)
      .where(who),
  });
  return { check: started[0]?.id, user: found[0] as (User & Room & { [K in keyof E]: E[K]["_"]["type"] }) | undefined };
}

/**
 * Records a login's result. A right password clears failures and any lock; a wrong one counts, and
 * from the threshold on locks for base * 2^(n - threshold), capped at max. SET reads the old values,
 * so concurrent results lose no count. (The caller batches it with endCheck.)
 */
export function recordLoginResult(db: Db, id: string, now: Date, p: LockPolicy, ok: boolean, condition?: SQL) {
  const result = { failedLogins: users.failedLogins, lockedUntil: users.lockedUntil };
  if (ok) {
    // Only a row with something to clear is written: most logins follow no failure.
    const dirty = or(gt(users.failedLogins, 0), isNotNull(users.lastFailedLoginAt), isNotNull(users.lockedUntil));
    return db
      .update(users)
      .set({ failedLogins: 0, lastFailedLoginAt: null, lockedUntil: null })
      .where(and(eq(users.id, id), dirty, condition))
      .returning(result);
  }
  const t = now.getTime();
  const failures = sql`(${failuresSoFar(t, p)} + 1)`;
  return db
    .update(users)
    .set({
      failedLogins: failures,
      lastFailedLoginAt: now,
      lockedUntil: sql`(CASE WHEN ${failures} >= ${p.threshold} THEN ${t} + min(${p.maxMs}, ${p.baseMs} * (1 << min(${failures} - ${p.threshold}, 30))) ELSE ${users.lockedUntil} END)`,
    })
    .where(eq(users.id, id))
    .returning(result);
}

/**
 * After beginLoginCheck refused: whether the account is locked and until when, and whether this is
 * the first refusal of this lock (marked in the same batch, so one audit row per lock, not per attempt).
 */
export async function readLock(db: Db, id: string, now: Date) {
  const { first, lock } = await batch(db, {
    first: db
      .update(users)
      .set({ lockAuditedUntil: sql`${users.lockedUntil}` })
      .where(and(eq(users.id, id), gt(users.lockedUntil, now), or(isNull(users.lockAuditedUntil), ne(users.lockAuditedUntil, users.lockedUntil))))
      .returning({ id: users.id }),
    lock: db.select({ lockedUntil: users.lockedUntil }).from(users).where(eq(users.id, id)),
  });
  const row = lock[0];
  const lockedUntil = row?.lockedUntil && row.lockedUntil > now ? row.lockedUntil : null;
  return { lockedUntil, firstRefusal: first.length > 0 };
}
