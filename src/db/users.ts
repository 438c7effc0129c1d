import { and, desc, eq, gt, isNull, lt, lte, ne, or, sql } from "drizzle-orm";
import type { Db } from "./client";
import { sessions, users, type User } from "./schema";

export type NewUser = typeof users.$inferInsert;

/** Usernames compare without case; the unique index is on lower(username). */
const usernameIs = (username: string) => sql`lower(${users.username}) = ${username.toLowerCase()}`;

export function insertUser(db: Db, row: NewUser) {
  return db.insert(users).values(row);
}

/** Looks a user up by username, or by email when the login contains "@". */
export async function findUserByLogin(db: Db, login: string): Promise<User | undefined> {
  const where = login.includes("@") ? eq(users.email, login.toLowerCase()) : usernameIs(login);
  return db.select().from(users).where(where).get();
}

export async function findUserById(db: Db, id: string): Promise<User | undefined> {
  return db.select().from(users).where(eq(users.id, id)).get();
}

/** Which of username / email is already taken (checked before spending a password hash). */
export async function findTaken(db: Db, username: string, email: string | undefined): Promise<{ username: boolean; email: boolean }> {
  const rows = await db
    .select({ username: users.username, email: users.email })
    .from(users)
    .where(email ? or(usernameIs(username), eq(users.email, email)) : usernameIs(username))
    .all();
  return {
    username: rows.some((r) => r.username.toLowerCase() === username.toLowerCase()),
    email: email !== undefined && rows.some((r) => r.email === email),
  };
}

/** A new hash for the same password (cost or pepper changed), only if the checked hash is still current. */
export function rehashPassword(db: Db, id: string, checkedHash: string, passwordHash: string, now: Date) {
  return db.update(users).set({ passwordHash, updatedAt: now }).where(and(eq(users.id, id), eq(users.passwordHash, checkedHash)));
}

/**
 * Replaces the password only if the hash is still the one that was checked (of two concurrent changes
 * at most one wins), and starts a new session epoch that keeps `keptSession` alive: every access token
 * of the user's other sessions is revoked (auth/revocations.ts). Returns the new epoch, or no row.
 */
export function replacePassword(db: Db, id: string, checkedHash: string, passwordHash: string, now: Date, keptSession: string) {
  return db
    .update(users)
    .set({ passwordHash, updatedAt: now, sessionEpoch: sql`${users.sessionEpoch} + 1`, epochKeptSession: keptSession })
    .where(and(eq(users.id, id), eq(users.passwordHash, checkedHash)))
    .returning({ epoch: users.sessionEpoch });
}

/** Starts a new session epoch that keeps no session (logout-all). */
export function endSessionEpoch(db: Db, id: string) {
  return db
    .update(users)
    .set({ sessionEpoch: sql`${users.sessionEpoch} + 1`, epochKeptSession: null })
    .where(eq(users.id, id))
    .returning({ epoch: users.sessionEpoch });
}

/** The user's current session epoch: what a new access token carries. */
export function sessionEpochOf(db: Db, id: string) {
  return db.select({ epoch: users.sessionEpoch }).from(users).where(eq(users.id, id));
}

/**
 * What KV must hold for the user's epoch (auth/revocations.ts EpochState): the epoch, the kept
 * session, and until when: the newest access token of any of the user's sessions.
 */
export function epochState(db: Db, id: string) {
  return db
    .select({
      epoch: users.sessionEpoch,
      kept: users.epochKeptSession,
      until: sql<number | null>`(SELECT max(${sessions.accessExpiresAt}) FROM ${sessions} WHERE ${sessions.userId} = ${id})`,
    })
    .from(users)
    .where(eq(users.id, id));
}

export interface LockPolicy {
  threshold: number; // failures in a row before the first lock
  baseMs: number; // first lock; each further failure doubles it
  maxMs: number; // no lock is ever longer
  windowMs: number; // a failure this long after the previous one starts the count again
  staleMs: number; // a check in flight this long ago is taken as finished (its worker died)
}

const failuresSoFar = (t: number, p: LockPolicy) =>
  sql`(CASE WHEN ${users.lastFailedLoginAt} IS NULL OR ${users.lastFailedLoginAt} < ${t - p.windowMs} THEN 0 ELSE ${users.failedLogins} END)`;
const inFlight = (t: number, p: LockPolicy) =>
  sql`(CASE WHEN ${users.loginsInFlightAt} IS NULL OR ${users.loginsInFlightAt} < ${t - p.staleMs} THEN 0 ELSE ${users.loginsInFlight} END)`;

/**
 * Starts a password check, in one conditional statement: refused (no row) while the account is locked,
 * or while failures so far plus checks in flight would reach the threshold (after a lock runs out, one
 * check at a time). So concurrent wrong guesses can never exceed the threshold, and correct ones in
 * flight are not failures. An id that matches no row (unknown user) runs the same statement, for equal timing.
 */
export async function beginPasswordCheck(db: Db, id: string, now: Date, p: LockPolicy) {
  const t = now.getTime();
  const [row] = await db
    .update(users)
    .set({ loginsInFlight: sql`${inFlight(t, p)} + 1`, loginsInFlightAt: now })
    .where(
      and(
        eq(users.id, id),
        or(isNull(users.lockedUntil), lte(users.lockedUntil, now)),
        sql`${inFlight(t, p)} < max(${p.threshold} - ${failuresSoFar(t, p)}, 1)`,
      ),
    )
    .returning({ id: users.id });
  return row !== undefined;
}

/**
 * Finishes a check begun by beginPasswordCheck. A right password clears failures and any lock; a wrong
 * one counts, and from the threshold on locks for base * 2^(n - threshold), capped at max. SET reads
 * the old values, so concurrent finishes lose no count.
 */
export function finishPasswordCheck(db: Db, id: string, now: Date, p: LockPolicy, ok: boolean) {
  const t = now.getTime();
  const done = sql`max(${inFlight(t, p)} - 1, 0)`;
  const result = { failedLogins: users.failedLogins, lockedUntil: users.lockedUntil };
  if (ok) return db.update(users).set({ failedLogins: 0, lastFailedLoginAt: null, lockedUntil: null, loginsInFlight: done }).where(eq(users.id, id)).returning(result);
  const failures = sql`(${failuresSoFar(t, p)} + 1)`;
  return db
    .update(users)
    .set({
      failedLogins: failures,
      lastFailedLoginAt: now,
      loginsInFlight: done,
      lockedUntil: sql`(CASE WHEN ${failures} >= ${p.threshold} THEN ${t} + min(${p.maxMs}, ${p.baseMs} * (1 << min(${failures} - ${p.threshold}, 30))) ELSE ${users.lockedUntil} END)`,
    })
    .where(eq(users.id, id))
    .returning(result);
}

/**
 * After beginPasswordCheck refused: whether the account is locked and until when, and whether this is
 * the first refusal of this lock (marked in the same batch, so one audit row per lock, not per attempt).
 */
export async function readLock(db: Db, id: string, now: Date) {
  const [first, [row]] = await db.batch([
    db
      .update(users)
      .set({ lockAuditedUntil: sql`${users.lockedUntil}` })
      .where(and(eq(users.id, id), gt(users.lockedUntil, now), or(isNull(users.lockAuditedUntil), ne(users.lockAuditedUntil, users.lockedUntil))))
      .returning({ id: users.id }),
    db.select({ lockedUntil: users.lockedUntil }).from(users).where(eq(users.id, id)),
  ]);
  const lockedUntil = row?.lockedUntil && row.lockedUntil > now ? row.lockedUntil : null;
  return { lockedUntil, firstRefusal: first.length > 0 };
}

export interface UserCursor {
  createdAt: number;
  id: string;
}

/** Newest first, keyset-paginated on (created_at, id) so pages stay stable while users sign up. */
export async function listUsers(db: Db, limit: number, after?: UserCursor): Promise<User[]> {
  const where = after
    ? or(lt(users.createdAt, new Date(after.createdAt)), and(eq(users.createdAt, new Date(after.createdAt)), lt(users.id, after.id)))
    : undefined;
  return db.select().from(users).where(where).orderBy(desc(users.createdAt), desc(users.id)).limit(limit).all();
}
