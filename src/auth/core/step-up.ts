import { audit, auditRow, logEvent } from "../../audit";
import { takeResetAttempt } from "../../db/account-tokens";
import { batch } from "../../db/batch";
import { type Proof, spendProof } from "../../db/mfa";
import { endCheck } from "../../db/password-checks";
import type { User } from "../../db/schema";
import { isSessionLive, revokeSession } from "../../db/sessions";
import { beginStepUpCheck, countStepUpFailure, resetStepUpFailures } from "../../db/step-up-checks";
import type { Deps } from "../../deps";
import { fromBase64Url, randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { Refusal, sessionEnded, TooManyAttempts, userGone } from "./errors";
import { CHECK_STALE_MS } from "./lockout";
import { passwordOptions, verifyPassword } from "./passwords";
import { revokeSessions } from "./revocations";
import { offersSecondFactor, openSecret, proofOf, refuseJustUsed, type SecondFactor } from "./second-factor";
import type { AccessClaims } from "./tokens";
import { verifyTotp } from "./totp";
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
 *
 * A route declares its action (routes/step-up.ts `sensitive`): its handler can only hand the flow a
 * `StepUpAsk` for that action, and what the flow writes takes the `StepUpProof` minted here, bound
 * to the user, the session that asked and the action. Nothing else makes one.
 */

declare const minted: unique symbol;

/** A signed-in session asking for `action`: what a route that declared the action hands its flow. */
export interface StepUpAsk<A extends Action> {
  readonly claims: AccessClaims;
  readonly action: A;
}
export const askStepUp = <A extends Action>(claims: AccessClaims, action: A): StepUpAsk<A> => ({ claims, action });

/**
 * A passed step-up: for this user, this session (null: a mailed link's holder), this action. The
 * second factor it spent, if any (a code is good once: spent with the check, or by the write's own
 * conditional statement). Minted only here.
 */
export interface StepUpProof<A extends Action> {
  readonly [minted]: A;
  readonly action: A;
  readonly userId: string;
  readonly sessionId: string | null;
  readonly factor: Proof | null;
}
/** A session's passed step-up, with the user as the check read it. */
export type Proved<A extends Action> = StepUpProof<A> & { readonly user: User };

function mint<A extends Action>(action: A, userId: string, sessionId: string | null, factor: Proof | null): StepUpProof<A> {
  return { action, userId, sessionId, factor } as StepUpProof<A>;
}

/** What a step-up request may carry. */
export interface StepUpInput extends SecondFactor {
  current_password?: string;
}

/** A check that started: the ask, the user as read with it, the check's id, and when the session signed in (D1's record). */
export interface StartedStepUp<A extends Action> {
  ask: StepUpAsk<A>;
  user: User;
  check: string;
  authTime?: Date;
}

/** Starts the check against the session's budget, or throws: 429 while checks fill it, 401 once it is spent. */
export async function beginStepUp<A extends Action>(deps: Deps, ask: StepUpAsk<A>, now: Date): Promise<StartedStepUp<A>> {
  const { db, config } = deps;
  const { claims } = ask;
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
  return { ask, user, check, authTime };
}

/**
 * Checks what `action` needs (auth/core/ways-in.ts) of a started check. On success the session's budget is
 * whole again and a second factor is spent (one batch; a code used meanwhile is refused); the proof
 * is returned. On failure the check counts against the session's budget.
 */
export async function proveStepUp<A extends Action>(deps: Deps, started: StartedStepUp<A>, input: StepUpInput, now: Date): Promise<Proved<A>> {
  const { user, check } = started;
  const { claims, action } = started.ask;
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
    if (!ok) return failStepUp(deps, started, "wrong_password");
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
      return failStepUp(deps, started, input.code !== undefined ? "wrong_code" : "wrong_recovery_code");
    }
  }
  const { spent } = await batch(deps.db, {
    spent: proof ? spendProof(deps.db, user.id, proof, now) : undefined,
    ...passed(deps, started),
  });
  if (spent && !spent[0]) throw new Refusal("invalid_mfa_code"); // that code was used meanwhile
  return { ...mint(action, user.id, claims.sid, proof), user };
}

/** Both steps, for actions with nothing to look at between them. */
export async function stepUp<A extends Action>(deps: Deps, ask: StepUpAsk<A>, input: StepUpInput): Promise<Proved<A>> {
  const now = new Date();
  return proveStepUp(deps, await beginStepUp(deps, ask, now), input, now);
}

/** What a passed check writes (in the caller's batch): the session's budget whole, the check ended. */
export const passed = (deps: Deps, started: StartedStepUp<Action>) => ({
  budgetWhole: resetStepUpFailures(deps.db, started.ask.claims.sid),
  checkEnded: endCheck(deps.db, started.check),
});

/**
 * enable_totp: a code from the pending secret (the new authenticator is in hand), which must be the
 * one this session set up (setup_totp records the session with it). Not this session's: as if none
 * were pending. Returns the proof and the code's step; `passed` goes in the enabling batch.
 */
export async function proveNewTotpCode(deps: Deps, started: StartedStepUp<"enable_totp">, code: string, now: Date) {
  const { user, check } = started;
  const { claims, action } = started.ask;
  if (!user.totpSecret || user.totpEnabledBy !== claims.sid) {
    await endCheck(deps.db, check);
    throw new Refusal("mfa_not_enabled", "Start with POST /mfa/totp/setup");
  }
  const step = await verifyTotp(await openSecret(deps, user.id, user.totpSecret), code, now);
  if (step === null) return failStepUp(deps, started, "wrong_code");
  return { ...mint(action, user.id, claims.sid, { step }), step, sealed: user.totpSecret };
}

/**
 * The second half of a ceremony whose first half passed the step-up (a link's exchange, a passkey's
 * verification): only the session that began it, as the ceremony recorded it, finishes it; null otherwise.
 */
export function proveCeremony<A extends Action>(ask: StepUpAsk<A>, began: { userId: string | null; sessionId: string | null }): StepUpProof<A> | null {
  const { claims, action } = ask;
  if (claims.sub !== began.userId || claims.sid !== began.sessionId) return null;
  return mint(action, claims.sub, claims.sid, null);
}

/** WebAuthn challenge bytes that name the session they were issued to: random, then that session's tag. */
export async function sessionChallenge(sid: string): Promise<string> {
  return toBase64Url(new Uint8Array([...randomBytes(16), ...(await sessionTag(sid))]));
}
const sessionTag = async (sid: string) => fromBase64Url(await sha256Base64Url(`step-up ceremony|${sid}`))!.slice(0, 16);
/** The session a challenge names, as a ceremony record for proveCeremony. */
export async function challengeSession(challenge: string, sid: string): Promise<string | null> {
  const mine = await sessionTag(sid);
  const tail = fromBase64Url(challenge)?.slice(16);
  return tail?.length === 16 && tail.every((b, i) => b === mine[i]) ? sid : null;
}

/** Codes a password reset may try per account and day (when it needs one): only link holders spend them. */
const RESET_CODES_PER_DAY = 10;

/**
 * A mailed link's step-up (reset_password): the link opened, and the second factor where the table
 * asks for one. The code has a budget of its own, counted on the account's reset links: only a link
 * holder can spend it, so no stranger's failed logins can block the reset (the account lock is not
 * involved), and a mailbox thief gets RESET_CODES_PER_DAY tries a day. The factor is spent by the
 * caller's batch, with the link.
 */
export async function proveByLink<A extends "reset_password">(
  deps: Deps,
  action: A,
  link: { tokenHash: string; user: User },
  offered: SecondFactor,
  now: Date,
): Promise<StepUpProof<A>> {
  const { db } = deps;
  const { user } = link;
  let proof: Proof | null = null;
  if (needs(action, user).includes("second_factor")) {
    if (!offersSecondFactor(offered)) throw new Refusal("invalid_mfa_code", "Two-step sign-in is on: send code or recovery_code with the new password");
    const [taken] = await takeResetAttempt(db, link.tokenHash, user.id, now, RESET_CODES_PER_DAY);
    if (!taken) throw new TooManyAttempts(3600, "Too many codes tried at password resets of this account today; try again later");
    proof = await proofOf(deps, user, offered, now);
    if (!proof) {
      await refuseJustUsed(deps, user, offered, now, "password_reset", async () => {}); // told so; the day's attempt stays taken
      await audit(deps, "mfa_failed", { user_id: user.id, reason: offered.code !== undefined ? "wrong_code" : "wrong_recovery_code", at: "password_reset" });
      throw new Refusal("invalid_mfa_code");
    }
  }
  return mint(action, user.id, null, proof);
}

/** Counts a failed check; the one that spends the budget signs the session out. */
export async function failStepUp(deps: Deps, started: StartedStepUp<Action>, reason: "wrong_password" | "wrong_code" | "wrong_recovery_code"): Promise<never> {
  const { db, config } = deps;
  const { check } = started;
  const { claims, action } = started.ask;
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
