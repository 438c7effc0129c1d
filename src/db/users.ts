import { and, desc, eq, exists, gt, isNotNull, isNull, lt, lte, ne, or, sql, type SQL } from "drizzle-orm";
import type { Db } from "./client";
import { checksInFlight, newCheck } from "./password-checks";
import { passwordChecks, sessions, users, type User } from "./schema";

export type NewUser = typeof users.$inferInsert;

/** Usernames compare without case; the unique index is on lower(username). */
const usernameIs = (username: string) => sql`lower(${users.username}) = ${username.toLowerCase()}`;

export function insertUser(db: Db, row: NewUser) {
  return db.insert(users).values(row);
}

/** The user a login names: by username, or by email when it contains "@". */
export const loginIs = (login: string) => (login.includes("@") ? eq(users.email, login.toLowerCase()) : usernameIs(login));

export async function findUserById(db: Db, id: string): Promise<User | undefined> {
  return db.select().from(users).where(eq(users.id, id)).get();
}

/** Whether an account has this (lower-cased) address. */
export async function emailTaken(db: Db, email: string): Promise<boolean> {
  return (await db.select({ id: users.id }).from(users).where(eq(users.email, email)).get()) !== undefined;
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
 * Replaces the password only if its version is still the one that was checked (of two concurrent
 * changes at most one wins; a mere rehash does not count as a change), and starts a new session
 * epoch that keeps `keptSession` alive: every access token of the user's other sessions is revoked
 * (auth/revocations.ts). Returns the new epoch, or no row.
 */
export function replacePassword(db: Db, id: string, checkedVersion: number, passwordHash: string, now: Date, keptSession: string) {
  // The kept session must still be live: a logout-all that landed meanwhile must not be undone.
  const keptLive = exists(db.select({ id: sessions.id }).from(sessions).where(and(eq(sessions.id, keptSession), isNull(sessions.revokedAt), gt(sessions.expiresAt, now))));
  return db
    .update(users)
    .set({ passwordHash, passwordVersion: sql`${users.passwordVersion} + 1`, passwordSetAt: now, passwordSetBy: keptSession, updatedAt: now, sessionEpoch: sql`${users.sessionEpoch} + 1`, epochKeptSession: keptSession })
    .where(and(eq(users.id, id), eq(users.passwordVersion, checkedVersion), keptLive))
    .returning({ epoch: users.sessionEpoch });
}

/** In a batch after a conditional password write: true only if the user now has this hash. */
export const passwordIs = (db: Db, id: string, passwordHash: string) =>
  exists(db.select({ id: users.id }).from(users).where(and(eq(users.id, id), eq(users.passwordHash, passwordHash))));

/**
 * The account exactly as a link's user checked it (its second factor and address): in a batch, the
 * link is used only if nothing the decision rested on changed meanwhile.
 */
export const accountAsChecked = (db: Db, u: Pick<User, "id" | "totpEnabledAt" | "emailVerifiedAt" | "email">) =>
  exists(
    db
      .select({ id: users.id })
      .from(users)
      .where(
        and(
          eq(users.id, u.id),
          sql`${users.totpEnabledAt} IS ${u.totpEnabledAt?.getTime() ?? null}`,
          sql`${users.emailVerifiedAt} IS ${u.emailVerifiedAt?.getTime() ?? null}`,
          sql`${users.email} IS ${u.email}`,
        ),
      ),
  );

/**
 * A new password from a reset link, only if `consumed` (the link was just used): a new version and
 * epoch, no lock, the address the link went to verified (the link proved the mailbox), and TOTP
 * removed when `removeTotp` (auth/ways-in.ts resetRemovesTotp).
 */
export function resetPassword(db: Db, id: string, passwordHash: string, now: Date, consumed: SQL, { removeTotp, mailbox }: { removeTotp: boolean; mailbox: string }) {
  return db
    .update(users)
    .set({
      passwordHash,
      passwordVersion: sql`${users.passwordVersion} + 1`,
      passwordSetAt: now,
      passwordSetBy: null,
      sessionEpoch: sql`${users.sessionEpoch} + 1`,
      epochKeptSession: null,
      failedLogins: 0,
      lastFailedLoginAt: null,
      lockedUntil: null,
      emailVerifiedAt: sql`CASE WHEN ${users.email} = ${mailbox} THEN coalesce(${users.emailVerifiedAt}, ${now.getTime()}) ELSE ${users.emailVerifiedAt} END`,
      ...(removeTotp
        ? { totpSecret: null, totpEnabledAt: null, totpEnabledBy: null, totpLastStep: 0, recoveryCodes: null }
        : { totpSecret: sql`CASE WHEN ${users.totpEnabledAt} IS NULL THEN NULL ELSE ${users.totpSecret} END` }), // a pending setup goes too
      updatedAt: now,
    })
    .where(and(eq(users.id, id), consumed))
    .returning({ epoch: users.sessionEpoch });
}

/** The address a verification link was sent to is verified, if it is still the user's address. */
export function markEmailVerified(db: Db, id: string, email: string, now: Date, consumed: SQL) {
  return db.update(users).set({ emailVerifiedAt: now, updatedAt: now }).where(and(eq(users.id, id), eq(users.email, email), consumed)).returning({ id: users.id });
}

/**
 * The new address from a confirmed change link, verified by that very link; `by` is the session that
 * asked for it. When the request's step-up included a code of the TOTP that is still on
 * (`endorsedBy`, its enabled time), the address ranks as proved no later than that TOTP: the new
 * mailbox alone does not outrank it (auth/ways-in.ts). The unique index settles a race for the address.
 */
export function changeEmail(db: Db, id: string, email: string, now: Date, consumed: SQL, by: string | null, endorsedBy: number | null) {
  const proved = endorsedBy === null ? now : sql`CASE WHEN ${users.totpEnabledAt} = ${endorsedBy} THEN ${users.totpEnabledAt} ELSE ${now.getTime()} END`;
  return db
    .update(users)
    .set({ email, emailVerifiedAt: proved, emailSetAt: now, emailSetBy: by, updatedAt: now })
    .where(and(eq(users.id, id), consumed))
    .returning({ id: users.id });
}

/**
 * A "this was not me" link from the former address undoes a change to `changedTo`: the account gets
 * `restored` back, verified (its mailbox just proved itself). Only while `changedTo` is still the address.
 */
export function restoreEmail(db: Db, id: string, changedTo: string, restored: string, now: Date, consumed: SQL) {
  return db
    .update(users)
    .set({ email: restored, emailVerifiedAt: now, emailSetAt: now, emailSetBy: null, updatedAt: now })
    .where(and(eq(users.id, id), eq(users.email, changedTo), consumed))
    .returning({ id: users.id });
}

/** Whether the row `alias` is an admin who is not disabled (raw SQL: it is used on other aliases of users too). */
const activeAdmin = (alias: string) => sql.raw(`(${alias}.disabled_at IS NULL AND EXISTS (SELECT 1 FROM json_each(${alias}.roles) WHERE value = 'admin'))`);

/**
 * True unless `id` is the last active admin: at least one always remains. Checked inside the statement
 * that would remove one, so two admins removing each other at once cannot both succeed.
 */
const notLastAdmin = (id: string) =>
  sql`(NOT ${activeAdmin("users")} OR (SELECT count(*) FROM users AS other WHERE other.id <> ${id} AND ${activeAdmin("other")}) > 0)`;

/** Deletes the account, unless it is the last active admin, or `onlyIf` fails (no row then). */
export function deleteUser(db: Db, id: string, onlyIf?: SQL) {
  return db.delete(users).where(and(eq(users.id, id), notLastAdmin(id), onlyIf)).returning({ id: users.id });
}

/**
 * An admin's change of roles or the disabled flag; either starts a new epoch (every session ends).
 * Only while the acting admin is still an active admin, and never removing the last one. No row
 * otherwise (adminRefusal says why).
 */
export function updateByAdmin(db: Db, id: string, actorId: string, change: { roles?: string[]; disabled?: boolean }, now: Date) {
  const removesAdmin = change.disabled === true || (change.roles !== undefined && !change.roles.includes("admin"));
  return db
    .update(users)
    .set({
      ...(change.roles ? { roles: change.roles } : {}),
      ...(change.disabled === undefined ? {} : { disabledAt: change.disabled ? now : null }),
      sessionEpoch: sql`${users.sessionEpoch} + 1`,
      epochKeptSession: null,
      updatedAt: now,
    })
    .where(and(eq(users.id, id), sql`EXISTS (SELECT 1 FROM users AS actor WHERE actor.id = ${actorId} AND ${activeAdmin("actor")})`, removesAdmin ? notLastAdmin(id) : undefined))
    .returning();
}

/** Why an admin's change or a deletion wrote nothing: no such user, the actor is no active admin, or the last admin. */
export async function adminRefusal(db: Db, id: string, actorId: string): Promise<"not_found" | "forbidden" | "last_admin"> {
  const [[target], [actor]] = await db.batch([
    db.select({ id: users.id }).from(users).where(eq(users.id, id)),
    db.select({ active: sql<number>`${activeAdmin("users")}` }).from(users).where(eq(users.id, actorId)),
  ]);
  if (!target) return "not_found";
  return actor?.active ? "last_admin" : "forbidden";
}

/** True in a batch once the user row was written by the statement stamped `now`. */
export const updatedAt = (db: Db, id: string, now: Date) => exists(db.select({ id: users.id }).from(users).where(and(eq(users.id, id), eq(users.updatedAt, now))));

/** Starts a new session epoch that keeps no session (logout-all, a "this was not me" link), only if `onlyIf` holds. */
export function endSessionEpoch(db: Db, id: string, onlyIf?: SQL) {
  return db
    .update(users)
    .set({ sessionEpoch: sql`${users.sessionEpoch} + 1`, epochKeptSession: null })
    .where(and(eq(users.id, id), onlyIf))
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
export async function beginLoginCheck(db: Db, who: SQL, now: Date, p: LockPolicy): Promise<{ check?: string; user?: User }> {
  const id = crypto.randomUUID();
  // The check's subject is computed from the row, so the lookup and the check are one round trip.
  const subject = sql`'user:' || ${users.id}`;
  const inFlight = sql`(SELECT count(*) FROM ${passwordChecks} WHERE ${passwordChecks.subject} = ${subject} AND ${passwordChecks.startedAt} > ${now.getTime() - p.staleMs})`;
  const [started, found] = await db.batch([
    db
      .insert(passwordChecks)
      .select(
        db
          .select({ id: sql`${id}`.as("id"), subject: subject.as("subject"), startedAt: sql`${now.getTime()}`.as("started_at") })
          .from(users)
          .where(and(who, or(isNull(users.lockedUntil), lte(users.lockedUntil, now)), sql`${inFlight} < max(${p.threshold} - ${failuresSoFar(now.getTime(), p)}, 1)`)),
      )
      .returning({ id: passwordChecks.id }),
    db.select().from(users).where(who),
  ]);
  return { check: started[0]?.id, user: found[0] };
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
    return db.update(users).set({ failedLogins: 0, lastFailedLoginAt: null, lockedUntil: null }).where(and(eq(users.id, id), dirty, condition)).returning(result);
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
