import { and, eq, exists, gt, isNull, lt, notExists, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { memberships } from "./organization-tables";
import { identities, passkeys, sessions, type User, users } from "./schema";

export type NewUser = typeof users.$inferInsert;

/** Usernames compare without case; the unique index is on lower(username). */
// An empty name is NO_USERNAME (auth/core/ways-in.ts): it names nobody, never the accounts that have none.
const usernameIs = (username: string) => (username === "" ? sql`0` : sql`lower(${users.username}) = ${username.toLowerCase()}`);

export function insertUser(db: Db, row: NewUser) {
  return db.insert(users).values(row);
}

/** The user a login names: by username, or by email when it contains "@". */
export const loginIs = (login: string) => (login.includes("@") ? eq(users.email, login.toLowerCase()) : usernameIs(login));

/** The user with this id, as a statement for a batch. */
export const selectUser = (db: Db, id: string) => db.select().from(users).where(eq(users.id, id));

export async function findUserById(db: Db, id: string): Promise<User | undefined> {
  return selectUser(db, id).get();
}

/** Selectors of one account, for the queries that take one (mailed links, checks). */
export const accountWithId = (id: string) => eq(users.id, id);
export const accountWithAddress = (email: string) => eq(users.email, email.toLowerCase());
/** The id of the account `who` selects (a read for a batch). */
export const accountIdOf = (db: Db, who: SQL) => db.select({ id: users.id }).from(users).where(who);

/** The account `who` selects, while `address` is its address and not yet verified. */
export const withUnverifiedAddress = (who: SQL, address: string) => and(who, eq(users.email, address.toLowerCase()), isNull(users.emailVerifiedAt))!;

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
    username: username !== "" && rows.some((r) => r.username.toLowerCase() === username.toLowerCase()),
    email: email !== undefined && rows.some((r) => r.email === email),
  };
}

/** Sets the username (the partial unique index settles a race: a violation means taken); the row as it is now. */
export const setUsername = (db: Db, id: string, username: string, now: Date) =>
  db.update(users).set({ username, updatedAt: now }).where(eq(users.id, id)).returning();

/** A new hash for the same password (cost or pepper changed), only if the checked hash is still current. */
export function rehashPassword(db: Db, id: string, checkedHash: string, passwordHash: string, now: Date) {
  return db
    .update(users)
    .set({ passwordHash, updatedAt: now })
    .where(and(eq(users.id, id), eq(users.passwordHash, checkedHash)));
}

/**
 * Replaces the password only if its version is still the one that was checked (of two concurrent
 * changes at most one wins; a mere rehash does not count as a change), and starts a new session
 * epoch that keeps `keptSession` alive: every access token of the user's other sessions is revoked
 * (auth/core/revocations.ts). Returns the new epoch, or no row.
 */
export function replacePassword(db: Db, id: string, checkedVersion: number, passwordHash: string, now: Date, keptSession: string) {
  // The kept session must still be live: a logout-all that landed meanwhile must not be undone.
  const keptLive = exists(
    db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.id, keptSession), isNull(sessions.revokedAt), gt(sessions.expiresAt, now))),
  );
  return db
    .update(users)
    .set({
      passwordHash,
      passwordVersion: sql`${users.passwordVersion} + 1`,
      passwordSetAt: now,
      passwordSetBy: keptSession,
      updatedAt: now,
      sessionEpoch: sql`${users.sessionEpoch} + 1`,
      epochKeptSession: keptSession,
    })
    .where(and(eq(users.id, id), eq(users.passwordVersion, checkedVersion), keptLive))
    .returning({ epoch: users.sessionEpoch });
}

/** In a batch after a conditional password write: true only if the user now has this hash. */
export const passwordIs = (db: Db, id: string, passwordHash: string) =>
  exists(
    db
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.id, id), eq(users.passwordHash, passwordHash))),
  );

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
 * removed when `removeTotp` (auth/core/ways-in.ts resetRemovesTotp).
 */
export function resetPassword(
  db: Db,
  id: string,
  passwordHash: string,
  now: Date,
  consumed: SQL,
  { removeTotp, mailbox }: { removeTotp: boolean; mailbox: string },
) {
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
        : {
            // A pending setup goes too, with the session it recorded (auth/core/step-up.ts proveNewTotpCode).
            totpSecret: sql`CASE WHEN ${users.totpEnabledAt} IS NULL THEN NULL ELSE ${users.totpSecret} END`,
            totpEnabledBy: sql`CASE WHEN ${users.totpEnabledAt} IS NULL THEN NULL ELSE ${users.totpEnabledBy} END`,
          }),
      updatedAt: now,
    })
    .where(and(eq(users.id, id), consumed))
    .returning({ epoch: users.sessionEpoch });
}

/** The address a verification link was sent to is verified, if it is still the user's address. */
export function markEmailVerified(db: Db, id: string, email: string, now: Date, consumed: SQL) {
  return db
    .update(users)
    .set({ emailVerifiedAt: now, updatedAt: now })
    .where(and(eq(users.id, id), eq(users.email, email), consumed))
    .returning({ id: users.id });
}

/**
 * The new address from a confirmed change link, verified by that very link; `by` is the session that
 * asked for it. When the request's step-up included a code of the TOTP that is still on
 * (`endorsedBy`, its enabled time), the address ranks as proved no later than that TOTP: the new
 * mailbox alone does not outrank it (auth/core/ways-in.ts). The unique index settles a race for the address.
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
 * `restored` back, verified (its mailbox just proved itself), but while TOTP is on ranked with that
 * TOTP, never above it: a mailbox alone does not outrank a second factor (auth/core/ways-in.ts). Only
 * while `changedTo` is still the address.
 */
export function restoreEmail(db: Db, id: string, changedTo: string, restored: string, now: Date, consumed: SQL) {
  const rank = sql`CASE WHEN ${users.totpEnabledAt} IS NOT NULL AND ${users.totpEnabledAt} < ${now.getTime()} THEN ${users.totpEnabledAt} ELSE ${now.getTime()} END`;
  return db
    .update(users)
    .set({ email: restored, emailVerifiedAt: rank, emailSetAt: now, emailSetBy: null, updatedAt: now })
    .where(and(eq(users.id, id), eq(users.email, changedTo), consumed))
    .returning({ id: users.id });
}

/** True in a batch once the user row was written by the statement stamped `now`. */
export const updatedAt = (db: Db, id: string, now: Date) =>
  exists(
    db
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.id, id), eq(users.updatedAt, now))),
  );

/** Starts a new session epoch that keeps no session (logout-all, a "this was not me" link), only if `onlyIf` holds. */
export function endSessionEpoch(db: Db, id: string, onlyIf?: SQL) {
  return db
    .update(users)
    .set({ sessionEpoch: sql`${users.sessionEpoch} + 1`, epochKeptSession: null })
    .where(and(eq(users.id, id), onlyIf))
    .returning({ epoch: users.sessionEpoch });
}

/**
 * Whether the user holds a second factor (TOTP on, or a passkey): what REQUIRE_MFA asks of an account
 * (auth/core/mfa-policy.ts). A column of the statements that read a token's owner, so no statement of its own.
 */
// Written out with its table: in a select from users alone, Drizzle leaves a column unqualified, and
// inside the subquery "id" would name the passkey's.
export const holdsSecondFactor =
  sql<boolean>`(${sql.raw('"users"."totp_enabled_at"')} IS NOT NULL OR EXISTS (SELECT 1 FROM ${passkeys} WHERE ${passkeys.userId} = ${sql.raw('"users"."id"')}))`
    .mapWith(Boolean)
    .as("second_factor");

/**
 * The user keeps a second factor besides the one going (`except`: TOTP, or one passkey): what removing
 * a factor must leave while REQUIRE_MFA applies. In the removing statement, so a removal racing it cannot leave none.
 */
export function anotherSecondFactor(userId: string, except: { totp?: true; passkey?: string }): SQL {
  return or(
    except.totp ? undefined : sql`EXISTS (SELECT 1 FROM ${users} WHERE ${users.id} = ${userId} AND ${users.totpEnabledAt} IS NOT NULL)`,
    sql`EXISTS (SELECT 1 FROM ${passkeys} WHERE ${passkeys.userId} = ${userId} AND ${passkeys.id} <> ${except.passkey ?? ""})`,
  )!;
}

/** Whether anotherSecondFactor holds now: why a removal was refused. */
export async function keepsAnotherSecondFactor(db: Db, userId: string, except: { totp?: true; passkey?: string }): Promise<boolean> {
  const row = await db
    .select({ kept: sql<number>`${anotherSecondFactor(userId, except)}` })
    .from(users)
    .where(eq(users.id, userId))
    .get();
  return Boolean(row?.kept);
}

/** The user's current session epoch, and whether they hold a second factor: what a new access token carries. */
export function sessionEpochOf(db: Db, id: string) {
  return db.select({ epoch: users.sessionEpoch, secondFactor: holdsSecondFactor }).from(users).where(eq(users.id, id));
}

/**
 * What KV must hold for the user's epoch (auth/core/revocations.ts EpochState): the epoch, the kept
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

/**
 * Housekeeping, with REQUIRE_VERIFIED_EMAIL on: accounts that signed up verify-first and let their
 * deadline pass without proving the address. Only those that never got further: no session, passkey,
 * identity or TOTP, plain "user" role, not disabled by an admin (their decision stands). Their links
 * and challenges go with them (cascade). Returns how many.
 */
export async function deleteUnverifiedAccounts(db: Db, now: Date): Promise<number> {
  const none = (table: typeof sessions | typeof passkeys | typeof identities | typeof memberships) =>
    notExists(db.select({ one: sql`1` }).from(table).where(eq(table.userId, users.id)));
  const gone = await db
    .delete(users)
    .where(
      and(
        lt(users.verifyBy, now),
        isNull(users.emailVerifiedAt),
        isNull(users.disabledAt),
        isNull(users.totpEnabledAt),
        sql`${users.roles} = '["user"]'`,
        none(sessions),
        none(memberships), // an organization's member got further: never an owner-less organization by this job
        none(passkeys),
        none(identities),
      ),
    )
    .returning({ id: users.id });
  return gone.length;
}
