import { and, count, desc, eq, exists, getTableColumns, lt, type SQL, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { identities, passkeys, users } from "./schema";
import { roomColumns } from "./sign-in-room";

/** Queries for WebAuthn credentials (auth/passkeys/passkeys.ts). */

export type NewPasskey = typeof passkeys.$inferInsert;

/**
 * Stores a credential only if `onlyIf` holds (the registering session is still live) and the user has
 * fewer than `max` passkeys (the same statement: two registrations at once cannot both pass the cap);
 * no row for one registered already.
 */
export function insertPasskey(db: Db, row: Required<NewPasskey>, onlyIf: SQL, max: number) {
  const value = (v: unknown, name: string) => sql`${v}`.as(name);
  return db
    .insert(passkeys)
    .select(
      db
        .select({
          id: value(row.id, "id"),
          userId: value(row.userId, "user_id"),
          publicKey: value(row.publicKey, "public_key"),
          counter: value(row.counter, "counter"),
          transports: value(row.transports ? JSON.stringify(row.transports) : null, "transports"),
          deviceType: value(row.deviceType, "device_type"),
          backedUp: value(row.backedUp ? 1 : 0, "backed_up"),
          name: value(row.name, "name"),
          createdAt: value(row.createdAt.getTime(), "created_at"),
          addedBy: value(row.addedBy, "added_by"),
          lastUsedAt: value(null, "last_used_at"),
        })
        .from(users)
        .where(and(eq(users.id, row.userId), onlyIf, sql`(SELECT count(*) FROM ${passkeys} WHERE ${passkeys.userId} = ${row.userId}) < ${max}`)),
    )
    .onConflictDoNothing()
    .returning({ id: passkeys.id });
}

/**
 * A credential with its owner, for a sign-in's first round trip: the owner's row (with what the
 * sign-in's batch may leave out, db/sign-in-room.ts) and the credential's columns under names of
 * their own (a D1 batch keys rows by column name, and both tables have an `id`). No row: unknown.
 */
export function findPasskeyWithOwner(db: Db, id: string, now: Date) {
  return db
    .select({
      ...getTableColumns(users),
      ...roomColumns(now),
      passkeyId: sql<string>`${passkeys.id}`.as("passkey_id"),
      passkeyPublicKey: sql<string>`${passkeys.publicKey}`.as("passkey_public_key"),
      passkeyCounter: sql<number>`${passkeys.counter}`.mapWith(Number).as("passkey_counter"),
      passkeyTransports: sql<string[] | null>`${passkeys.transports}`.mapWith(passkeys.transports).as("passkey_transports"),
    })
    .from(passkeys)
    .innerJoin(users, eq(users.id, passkeys.userId))
    .where(eq(passkeys.id, id));
}

export function findOwnPasskey(db: Db, id: string, userId: string) {
  return db
    .select()
    .from(passkeys)
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
    .get();
}

/** The user's credential ids, for excludeCredentials (one authenticator registers once). */
export function passkeyIdsOf(db: Db, userId: string) {
  return db.select({ id: passkeys.id, transports: passkeys.transports }).from(passkeys).where(eq(passkeys.userId, userId));
}

export function listPasskeys(db: Db, userId: string) {
  return db.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(desc(passkeys.createdAt)).all();
}

/** A user and how many passkeys they have: one round trip (GET /me, the admin's view of a user). */
export async function userWithPasskeyCount(db: Db, userId: string) {
  const found = await batch(db, {
    user: db.select().from(users).where(eq(users.id, userId)),
    passkeys: db.select({ n: count() }).from(passkeys).where(eq(passkeys.userId, userId)),
  });
  const user = found.user[0];
  return user ? { user, passkeys: found.passkeys[0]?.n ?? 0 } : undefined;
}

/** A user, their passkeys and social identities: one round trip (GET /me/security). */
export async function userWithWaysIn(db: Db, userId: string) {
  const found = await batch(db, {
    user: db.select().from(users).where(eq(users.id, userId)),
    passkeys: db.select().from(passkeys).where(eq(passkeys.userId, userId)),
    identities: db.select().from(identities).where(eq(identities.userId, userId)),
  });
  const user = found.user[0];
  return user ? { user, passkeys: found.passkeys, identities: found.identities } : undefined;
}

/**
 * The WebAuthn rule for signature counters: a sign-in's counter must be greater than the stored one,
 * unless both are 0 (an authenticator that keeps none, like synced passkeys).
 */
export const counterAdvances = (stored: number, counter: number) => (counter === 0 ? stored === 0 : stored < counter);
const advancesInSql = (counter: number) => (counter === 0 ? eq(passkeys.counter, 0) : lt(passkeys.counter, counter));

/**
 * True in a batch while `counter` is acceptable for the credential (counterAdvances, checked again in
 * D1: of two sign-ins that raced past the first check with one counter value, one opens a session).
 */
export const counterMayAdvance = (db: Db, id: string, counter: number) =>
  exists(
    db
      .select({ id: passkeys.id })
      .from(passkeys)
      .where(and(eq(passkeys.id, id), advancesInSql(counter))),
  );

/**
 * Records a sign-in: the new counter and when (after the session insert that checked the counter, in
 * one batch), only if `onlyIf` holds (the session was written).
 */
export function recordPasskeyUse(db: Db, id: string, counter: number, now: Date, onlyIf: SQL) {
  return db
    .update(passkeys)
    .set({ counter, lastUsedAt: now })
    .where(and(eq(passkeys.id, id), advancesInSql(counter), onlyIf));
}

/** True in a batch once this request stored the passkey (stamped `now`). */
export const passkeyStoredAt = (db: Db, id: string, now: Date) =>
  exists(
    db
      .select({ id: passkeys.id })
      .from(passkeys)
      .where(and(eq(passkeys.id, id), eq(passkeys.createdAt, now))),
  );

/** Removes one of the user's passkeys (only if `onlyIf` and `andIf` hold, in a batch). */
export function deletePasskey(db: Db, id: string, userId: string, onlyIf?: SQL, andIf?: SQL) {
  return db
    .delete(passkeys)
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId), onlyIf, andIf))
    .returning({ id: passkeys.id, name: passkeys.name });
}

/** Removes every passkey of the user, only if `onlyIf` holds (a password reset). */
export function deleteUserPasskeys(db: Db, userId: string, onlyIf: SQL) {
  return db
    .delete(passkeys)
    .where(and(eq(passkeys.userId, userId), onlyIf))
    .returning({ id: passkeys.id });
}
