import type { SQL } from "drizzle-orm";
import { audit, auditRow, logEvent } from "../../audit";
import type { Config } from "../../config";
import { batch } from "../../db/batch";
import { beginLoginCheck, type LockPolicy, readLock, recordLoginResult } from "../../db/login-checks";
import { endCheck } from "../../db/password-checks";
import type { User } from "../../db/schema";
import type { Room } from "../../db/sign-in-room";
import { accountWithId, loginIs } from "../../db/users";
import type { Deps } from "../../deps";
import { TooManyAttempts } from "./errors";

/**
 * Online-guessing protection for logins: failures in a row lock the account in D1 for a time that
 * doubles with each further failure; a right password resets the count. Checks in flight are rows
 * of their own (password_checks), counted apart from failures, so concurrent guesses never exceed the
 * threshold and a burst of correct logins never locks anyone out; a check whose worker died stops
 * counting after CHECK_STALE_MS. Knows nothing of HTTP: a refusal is a TooManyAttempts error.
 */

/** A password check takes well under a second; one in flight this long belongs to a worker that died. */
export const CHECK_STALE_MS = 10_000;

export const lockPolicy = (config: Config): LockPolicy => ({
  threshold: config.LOGIN_LOCK_THRESHOLD,
  baseMs: config.LOGIN_LOCK_BASE * 1000,
  maxMs: config.LOGIN_LOCK_MAX * 1000,
  // A failure more than a day after the previous one starts the count again.
  windowMs: 24 * 60 * 60 * 1000,
  staleMs: CHECK_STALE_MS,
});

/**
 * Finds the account a login names and starts its password check (one round trip), or throws
 * TooManyAttempts: for the rest of the lock, or for a second while too many checks are in flight.
 * `limit` (the per-account edge limit) runs once the account is known; a refusal ends the check.
 * A login that names nobody runs the same batch on no row (and gets no check).
 */
export async function startLogin(
  deps: Deps,
  login: string,
  now: Date,
  limit?: (key: string) => Promise<void>,
): Promise<{ user?: User & Room; check?: string }> {
  const { user, check } = await beginLoginCheck(deps.db, loginIs(login), now, lockPolicy(deps.config));
  try {
    // One budget per account, whether it is named by username or by email.
    await limit?.(user ? `user:${user.id}` : `name:${login.toLowerCase()}`);
  } catch (err) {
    if (check) await endCheck(deps.db, check);
    throw err;
  }
  if (user && !check) await refuse(deps, user.id, now);
  return { user, check };
}

/**
 * Starts a check of a secret (a password, a second-factor code) for a known user, through the same
 * lock as login: the user as read in that round trip, and the check's id. No user: no row.
 */
export async function startPasswordCheck(deps: Deps, userId: string, now: Date): Promise<{ user?: User; check: string }> {
  const { user, check } = await beginLoginCheck(deps.db, accountWithId(userId), now, lockPolicy(deps.config));
  if (user && !check) await refuse(deps, userId, now);
  return { user, check: check ?? "" };
}

/**
 * Starts the check of a login's second step through the same lock, in the round trip that reads the
 * challenge: the account `who` names (the challenge's, only while it is open) with the caller's
 * columns (the challenge's own), and the check's id. `limit` runs once the account is known (a
 * refusal ends the check), then a lock refuses. Nobody named (a used or unknown challenge): no row.
 */
export async function startSecondStep<E extends Record<string, SQL.Aliased>>(
  deps: Deps,
  who: SQL,
  now: Date,
  extra: E,
  limit?: (key: string) => Promise<void>,
) {
  const { user, check } = await beginLoginCheck(deps.db, who, now, lockPolicy(deps.config), extra);
  if (!user) return {};
  try {
    await limit?.(`user:${user.id}`); // the same per-account budget as the password step
  } catch (err) {
    if (check) await endCheck(deps.db, check);
    throw err;
  }
  if (!check) await refuse(deps, user.id, now);
  return { user, check: check ?? "" };
}

/** Why a check could not start: the lock (for its remaining time) or too many in flight (a second). */
async function refuse(deps: Deps, userId: string, now: Date): Promise<never> {
  const { lockedUntil, firstRefusal } = await readLock(deps.db, userId, now);
  if (!lockedUntil) {
    await audit(deps, "rate_limited", { user_id: userId, reason: "checks_in_flight" }, { store: false });
    throw new TooManyAttempts(1, "Too many sign-in attempts in progress for this account; retry in a second");
  }
  // Only the first refusal of each lock is kept in D1; every refusal still writes its log line.
  await audit(deps, "rate_limited", { user_id: userId, reason: "account_locked" }, { store: firstRefusal });
  throw new TooManyAttempts(
    Math.max(1, Math.ceil((lockedUntil.getTime() - now.getTime()) / 1000)),
    "Too many failed attempts for this account, try again later",
  );
}

/**
 * Records a wrong password (or an unknown user, on no row) with its audit row, in one round trip;
 * returns the lock this failure set, if any.
 */
export async function failPasswordCheck(
  deps: Deps,
  userId: string | undefined,
  check: string | undefined,
  now: Date,
  event: "login_failed" | "mfa_failed" = "login_failed",
  reason?: string,
) {
  const fields = { user_id: userId ?? null, ...(reason ? { reason } : {}) };
  const { counted } = await batch(deps.db, {
    counted: recordLoginResult(deps.db, userId ?? "", now, lockPolicy(deps.config), false),
    checkEnded: endCheck(deps.db, check ?? ""),
    audited: auditRow(deps, event, fields),
  });
  logEvent(deps, event, fields);
  const row = counted[0];
  return userId && row?.lockedUntil && row.lockedUntil > now ? row : undefined;
}

/** `account_locked`, after the failure that set the lock has been audited. */
export async function auditLock(deps: Deps, userId: string, lock: { failedLogins: number; lockedUntil: Date | null } | undefined) {
  if (lock?.lockedUntil) await audit(deps, "account_locked", { user_id: userId, failures: lock.failedLogins, until: lock.lockedUntil.toISOString() });
}

/** Nothing to clear: no failure counted, no lock (the columns recordLoginResult's reset writes). */
export const lockClean = (user: Pick<User, "failedLogins" | "lastFailedLoginAt" | "lockedUntil">) =>
  user.failedLogins === 0 && user.lastFailedLoginAt === null && user.lockedUntil === null;

/**
 * The statements that record a right secret (clearing the failure count, only if `condition` holds
 * in the batch) and end its check, named for the caller's batch (db/batch.ts). `seen`: the account as
 * the read that started this check saw it; clean, there is nothing to clear and no statement for it.
 * A failure counted since then (a concurrent wrong guess) is ordered after this right one, which
 * started its check (and read the account) first: it stands, as it would have had it come a moment
 * later. A failure can never lock the account meanwhile either: this check is counted in flight.
 */
export const passPasswordCheck = (deps: Deps, userId: string, check: string, now: Date, condition?: SQL, seen?: User) => ({
  failuresCleared: seen && lockClean(seen) ? undefined : recordLoginResult(deps.db, userId, now, lockPolicy(deps.config), true, condition),
  checkEnded: endCheck(deps.db, check),
});
