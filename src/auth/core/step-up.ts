import { audit, auditRow, logEvent } from "../../audit";
import { batch } from "../../db/batch";
import { type Proof, spendProof } from "../../db/mfa";
import { endCheck } from "../../db/password-checks";
import type { User } from "../../db/schema";
import { isSessionLive, revokeSession } from "../../db/sessions";
import { beginStepUpCheck, countStepUpFailure, resetStepUpFailures } from "../../db/step-up-checks";
import type { Deps } from "../../deps";
import { Refusal, sessionEnded, TooManyAttempts, userGone } from "./errors";
import { CHECK_STALE_MS } from "./lockout";
import { passwordOptions, verifyPassword } from "./passwords";
import { revokeSessions } from "./revocations";
import { offersSecondFactor, proofOf, refuseJustUsed, type SecondFactor } from "./second-factor";
import type { AccessClaims } from "./tokens";
import { type Action, needs } from "./ways-in";

/**
 * Step-up: the fresh proof a signed-in session sends before an action that adds or removes a way
 * in, moves the address, changes the password or deletes the account. What each action needs is
 * the table in auth/core/ways-in.ts; this checks it. Knows nothing of HTTP.
 *
 * Wrong passwords and codes count against the session's own budget (STEP_UP_MAX_FAILURES, then the
 * session is signed out), never the account lock: a stranger's failed logins cannot block the
 * signed-in owner, and the owner's typos do not lock the account for everyone. Checks in flight are
 * rows of their own (password_checks), so concurrent guesses cannot exceed the budget.
 */

/** What a step-up request may carry. */
export interface StepUpInput extends SecondFactor {
  current_password?: string;
}

/** A check that started: the user as read with it, the check's id, and when the session signed in (D1's record). */
export interface StartedStepUp {
  user: User;
  check: string;
  authTime?: Date;
}

/** Starts the check against the session's budget, or throws: 429 while checks fill it, 401 once it is spent. */
export async function beginStepUp(deps: Deps, claims: AccessClaims, now: Date): Promise<StartedStepUp> {
  const { db, config } = deps;
  const { check, user, authTime } = await beginStepUpCheck(db, claims.sid, claims.sub, now, config.STEP_UP_MAX_FAILURES, CHECK_STALE_MS);
  if (!user) {
    if (check) await endCheck(db, check);
    throw userGone();
  }
  if (!check) {
    // Failures and checks in flight fill the budget; the last of them signs the session out if wrong.
    if (await isSessionLive(db, claims.sid, now)) throw new TooManyAttempts(1, "Too many checks in progress for this session; retry in a second");
    // Over (its budget spent, say): make sure KV says so too, in case that write failed before.
    await revokeSessions(deps.kv, await revokeSession(db, { id: claims.sid }, now));
    throw sessionEnded();
  }
  return { user, check, authTime };
}

/**
 * Checks what `action` needs (auth/core/ways-in.ts) of a started check. On success the session's budget is
 * whole again and a second factor is spent (one batch; a code used meanwhile is refused); the proof
 * is returned. On failure the check counts against the session's budget.
 */
export async function proveStepUp(
  deps: Deps,
  claims: AccessClaims,
  action: Action,
  started: StartedStepUp,
  input: StepUpInput,
  now: Date,
): Promise<Proof | null> {
  const { user, check } = started;
  const needed = needs(action, user);
  if (needed.includes("recent_sign_in")) {
    // No password to ask: the session's sign-in must be recent (a new sign-in with the provider renews
    // it), as D1 recorded it: a token's own auth_time claim is not taken at its word.
    const signedInAt = started.authTime?.getTime() ?? 0;
    if (now.getTime() - signedInAt > deps.config.STEP_UP_MAX_AGE * 1000) {
      await endCheck(deps.db, check);
      throw new Refusal("reauthentication_required", `Sign in again, then retry within ${Math.round(deps.config.STEP_UP_MAX_AGE / 60)} minutes`);
    }
  }
  if (needed.includes("password")) {
    if (input.current_password === undefined) {
      await endCheck(deps.db, check); // not a guess: the field is missing
      throw new Refusal("validation_failed", undefined, { current_password: "is required" });
    }
    const ok = input.current_password !== undefined && (await verifyPassword(input.current_password, user.passwordHash, passwordOptions(deps.config)));
    if (!ok) return failStepUp(deps, claims, action, check, "wrong_password");
  }
  let proof: Proof | null = null;
  if (needed.includes("second_factor")) {
    if (!offersSecondFactor(input)) {
      await endCheck(deps.db, check); // not a guess: the client did not know it was needed
      throw new Refusal("invalid_mfa_code", "Two-step sign-in is on: send code or recovery_code with the password");
    }
    proof = await proofOf(deps, user, input, now);
    if (!proof) {
      await refuseJustUsed(deps, user, input, now, "step_up", () => endCheck(deps.db, check));
      return failStepUp(deps, claims, action, check, input.code !== undefined ? "wrong_code" : "wrong_recovery_code");
    }
  }
  await passStepUp(deps, claims, user, check, proof, now);
  return proof;
}

/** Both steps, for actions with nothing to look at between them. */
export async function stepUp(deps: Deps, claims: AccessClaims, action: Action, input: StepUpInput): Promise<{ user: User; proof: Proof | null }> {
  const now = new Date();
  const started = await beginStepUp(deps, claims, now);
  return { user: started.user, proof: await proveStepUp(deps, claims, action, started, input, now) };
}

/** A passed check: the proof spent (a code is good once), the budget whole, the check ended. */
export async function passStepUp(deps: Deps, claims: AccessClaims, user: User, check: string, proof: Proof | null, now: Date) {
  const { db } = deps;
  const { spent } = await batch(db, {
    spent: proof ? spendProof(db, user.id, proof, now) : undefined,
    budgetWhole: resetStepUpFailures(db, claims.sid),
    checkEnded: endCheck(db, check),
  });
  if (spent && !spent[0]) throw new Refusal("invalid_mfa_code"); // that code was used meanwhile
}

/** Counts a failed check; the one that spends the budget signs the session out. */
export async function failStepUp(
  deps: Deps,
  claims: AccessClaims,
  action: Action,
  check: string,
  reason: "wrong_password" | "wrong_code" | "wrong_recovery_code",
): Promise<never> {
  const { db, config } = deps;
  const fields = { user_id: claims.sub, session_id: claims.sid, action, reason };
  const { counted } = await batch(db, {
    counted: countStepUpFailure(db, claims.sid),
    checkEnded: endCheck(db, check),
    audited: auditRow(deps, "step_up_failed", fields),
  });
  const failures = counted[0]?.failures ?? config.STEP_UP_MAX_FAILURES;
  logEvent(deps, "step_up_failed", { ...fields, failures });
  if (failures >= config.STEP_UP_MAX_FAILURES) {
    // The session's budget is spent: whoever holds this token is guessing. Sign the session out.
    await audit(deps, "session_revoked", { user_id: claims.sub, session_id: claims.sid, reason: "step_up_failures" });
    await revokeSessions(deps.kv, await revokeSession(db, { id: claims.sid }, new Date()));
    throw new Refusal("invalid_token", "Too many wrong passwords or codes: this session has been signed out");
  }
  if (reason === "wrong_password") throw new Refusal("invalid_credentials", "The current password is wrong");
  throw new Refusal("invalid_mfa_code");
}
