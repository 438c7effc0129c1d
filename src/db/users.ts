import { and, desc, eq, lt, or, sql } from "drizzle-orm";
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
