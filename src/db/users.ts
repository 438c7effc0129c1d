import { and, desc, eq, isNull, lt, lte, or, sql } from "drizzle-orm";
import type { Db } from "./client";
import { users, type User } from "./schema";

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

export function updatePasswordHash(db: Db, id: string, passwordHash: string, now: Date) {
  return db.update(users).set({ passwordHash, updatedAt: now }).where(eq(users.id, id));
}

export interface LockPolicy {
  threshold: number; // failures in a row before the first lock
  baseMs: number; // first lock; each further failure doubles it
  maxMs: number; // no lock is ever longer
  windowMs: number; // a failure this long after the previous one starts the count again
}

/**
 * Counts a login attempt as failed before the password is even checked (a right password resets
 * the count afterwards), and from the threshold on locks the account for base * 2^(n - threshold),
 * capped at max. One conditional statement that skips locked rows: concurrent guesses cannot slip
 * past a lock, and none is lost (SET reads the old values). Returns nothing for a locked account,
 * or for an id that matches no row (the unknown-user path runs the same statement, for equal timing).
 */
export async function countLoginAttempt(db: Db, id: string, now: Date, p: LockPolicy) {
  const t = now.getTime();
  const failures = sql`(CASE WHEN ${users.lastFailedLoginAt} IS NULL OR ${users.lastFailedLoginAt} < ${t - p.windowMs} THEN 1 ELSE ${users.failedLogins} + 1 END)`;
  const [row] = await db
    .update(users)
    .set({
      failedLogins: failures,
      lastFailedLoginAt: now,
      lockedUntil: sql`(CASE WHEN ${failures} >= ${p.threshold} THEN ${t} + min(${p.maxMs}, ${p.baseMs} * (1 << min(${failures} - ${p.threshold}, 30))) ELSE NULL END)`,
    })
    .where(and(eq(users.id, id), or(isNull(users.lockedUntil), lte(users.lockedUntil, now))))
    .returning({ failedLogins: users.failedLogins, lockedUntil: users.lockedUntil });
  return row;
}

export function clearFailedLogins(db: Db, id: string) {
  return db.update(users).set({ failedLogins: 0, lastFailedLoginAt: null, lockedUntil: null }).where(eq(users.id, id));
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
