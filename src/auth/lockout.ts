import { audit } from "../audit";
import type { Config } from "../config";
import { endCheck } from "../db/password-checks";
import { beginLoginCheck, readLock, recordLoginResult, type LockPolicy } from "../db/users";
import type { Deps } from "../deps";
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
 * Starts a password check for a login and returns its id, or throws TooManyAttempts: for the rest of
 * the lock, or for a second while too many checks are in flight. An unknown user (no id) runs the
 * same statement on no row (and gets no id).
 */
export async function startPasswordCheck(deps: Deps, userId: string | undefined, now: Date): Promise<string | undefined> {
  const check = await beginLoginCheck(deps.db, userId ?? "", now, lockPolicy(deps.config));
  if (check || !userId) return check;
  const { lockedUntil, firstRefusal } = await readLock(deps.db, userId, now);
  if (!lockedUntil) {
    await audit(deps, "rate_limited", { user_id: userId, reason: "checks_in_flight" }, { store: false });
    throw new TooManyAttempts(1, "Too many sign-in attempts in progress for this account; retry in a second");
  }
  // Only the first refusal of each lock is kept in D1; every refusal still writes its log line.
  await audit(deps, "rate_limited", { user_id: userId, reason: "account_locked" }, { store: firstRefusal });
  throw new TooManyAttempts(Math.max(1, Math.ceil((lockedUntil.getTime() - now.getTime()) / 1000)), "Too many failed attempts for this account, try again later");
}

/** Records a wrong password (or an unknown user, on no row); returns the lock this failure set, if any. */
export async function failPasswordCheck(deps: Deps, userId: string | undefined, check: string | undefined, now: Date) {
  const [[row]] = await deps.db.batch([recordLoginResult(deps.db, userId ?? "", now, lockPolicy(deps.config), false), endCheck(deps.db, check ?? "")]);
  return userId && row?.lockedUntil && row.lockedUntil > now ? row : undefined;
}

/** `account_locked`, after the failure that set the lock has been audited. */
export async function auditLock(deps: Deps, userId: string, lock: { failedLogins: number; lockedUntil: Date | null } | undefined) {
  if (lock?.lockedUntil) await audit(deps, "account_locked", { user_id: userId, failures: lock.failedLogins, until: lock.lockedUntil.toISOString() });
}

/** The statements that record a right password and end its check, for the caller's batch. */
export const passPasswordCheck = (deps: Deps, userId: string, check: string, now: Date) =>
  [recordLoginResult(deps.db, userId, now, lockPolicy(deps.config), true), endCheck(deps.db, check)] as const;
