import { audit } from "../audit";
import type { Config } from "../config";
import { countLoginAttempt, findUserById, type LockPolicy } from "../db/users";
import { ApiError } from "../errors";
import type { Deps } from "./sessions";

/**
 * Online-guessing protection for every place that checks a user's password (login, password change):
 * failures in a row lock the account in D1 for a time that doubles with each further failure.
 * A successful check resets the count (db/users.ts clearFailedLogins, batched by the caller).
 */

const lockPolicy = (config: Config): LockPolicy => ({
  threshold: config.LOGIN_LOCK_THRESHOLD,
  baseMs: config.LOGIN_LOCK_BASE * 1000,
  maxMs: config.LOGIN_LOCK_MAX * 1000,
  // A failure more than a day after the previous one starts the count again.
  windowMs: 24 * 60 * 60 * 1000,
});

export type Attempt = Awaited<ReturnType<typeof countLoginAttempt>>;

/**
 * Counts this attempt as failed before the password is checked, and answers 429 rate_limited
 * (same shape as the edge limits, no hash spent) while the account is locked. An unknown user
 * (no id) runs the same statement on no row, so both paths cost the same.
 */
export async function beginPasswordAttempt(deps: Deps, userId: string | undefined, now: Date): Promise<Attempt> {
  const attempt = await countLoginAttempt(deps.db, userId ?? "", now, lockPolicy(deps.config));
  if (userId && !attempt) {
    const until = (await findUserById(deps.db, userId))?.lockedUntil ?? now;
    await audit(deps, "rate_limited", { user_id: userId, reason: "account_locked" });
    const retryAfter = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
    throw new ApiError("rate_limited", "Too many failed attempts for this account, try again later", undefined, { "Retry-After": String(retryAfter) });
  }
  return attempt;
}

/** After a wrong password: records `account_locked` if this attempt is the one that locked it. */
export async function auditIfLocked(deps: Deps, userId: string, attempt: Attempt): Promise<void> {
  if (attempt?.lockedUntil) {
    await audit(deps, "account_locked", { user_id: userId, failures: attempt.failedLogins, until: attempt.lockedUntil.toISOString() });
  }
}
