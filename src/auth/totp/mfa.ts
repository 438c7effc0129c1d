import { auditRowIf, logEvent } from "../../audit";
import { batch } from "../../db/batch";
import {
  challengeAccount,
  consumeChallenge,
  consumedWhileUsable,
  countChallengeFailure,
  disableTotp as disableTotpRow,
  enableTotp as enableTotpRow,
  findUsedChallenge,
  spendProof,
  storePendingTotp,
  totpTurnedAt,
} from "../../db/mfa";
import { endCheck } from "../../db/password-checks";
import type { User } from "../../db/schema";
import { sessionExists, sessionLive } from "../../db/sessions";
import { anotherSecondFactor, findUserById } from "../../db/users";
import type { Deps } from "../../deps";
import { sha256Base64Url } from "../../encoding";
import { log } from "../../log";
import { decideSignIn } from "../core/decision";
import { Refusal } from "../core/errors";
import { auditLock, failPasswordCheck, startSecondStep } from "../core/lockout";
import { mfaRequiredFor } from "../core/mfa-policy";
import { successorOf } from "../core/refresh-tokens";
import { methodOf, openSecret, proofOf, RECOVERY_CODES, recoveryCodesFor, recoveryHash, refuseJustUsed, type SecondFactor } from "../core/second-factor";
import { seal } from "../core/secrets";
import { clientFingerprint, type Issued, reissueSignIn } from "../core/sign-in";
import { beginStepUp, failStepUp, passed, proveNewTotpCode, proveStepUp, type StartedStepUp, type StepUpAsk, type StepUpInput } from "../core/step-up";
import { newTotpSecret, otpauthUri, toBase32, verifyTotp } from "../core/totp";
import { notMeLink } from "../mail/links";
import { securityNotice } from "../mail/notices";

/**
 * TOTP as a second step of login, with single-use recovery codes. Knows nothing of HTTP.
 *
 * - The secret is sealed at rest (auth/core/secrets.ts); recovery codes are stored as SHA-256 only (120
 *   bits each, so a hash cannot be reversed by guessing): auth/core/second-factor.ts.
 * - A code is good once: its time step must be later than the last one accepted, and accepting it
 *   is the same conditional statement that uses it (db/mfa.ts), so of two requests one wins.
 * - The login's second step goes through the login lock (a wrong code counts like a wrong password;
 *   only a check that includes a right code clears the count). Setting up, enabling and disabling
 *   are step-ups of a signed-in session (auth/core/step-up.ts): that session's own budget.
 */

/** Wrong codes one login challenge takes; then the password is asked again (the lock usually comes first). */
const MAX_CODES_PER_CHALLENGE = 5;

/**
 * Records a failed second step of a login with its audit row; a failure that locks the account
 * after a right password means someone knows the password, and the owner is told.
 */
async function failSecondStep(deps: Deps, user: User, check: string, now: Date, reason: "wrong_code" | "wrong_recovery_code") {
  const lock = await failPasswordCheck(deps, user.id, check, now, "mfa_failed", reason);
  await auditLock(deps, user.id, lock);
  if (lock) securityNotice(deps, user, "Someone who knows your password entered wrong two-step codes, and your account is locked for a while");
}

/**
 * Starts (or restarts) TOTP setup after the step-up (the password): a new secret, pending until a
 * code from it arrives at enable. A stolen access token alone cannot put an authenticator on the account.
 */
export async function setupTotp(deps: Deps, ask: StepUpAsk<"setup_totp">, currentPassword: string | undefined): Promise<{ secret: string; uri: string }> {
  const now = new Date();
  const started = await beginStepUp(deps, ask, now);
  if (started.user.totpEnabledAt) {
    await endCheck(deps.db, started.check);
    throw new Refusal("mfa_already_enabled");
  }
  const { user, sessionId } = await proveStepUp(deps, started, { current_password: currentPassword }, now);
  const secret = newTotpSecret(deps.config.TOTP_ALGORITHM);
  const [stored] = await storePendingTotp(deps.db, user.id, await seal(deps.config.MFA_ENCRYPTION_KEY, user.id, secret), now, sessionId ?? "");
  if (!stored) throw new Refusal("mfa_already_enabled"); // enabled meanwhile
  return { secret: toBase32(secret), uri: otpauthUri(deps.config.APP_NAME, user.username, secret) };
}

/**
 * Turns TOTP on with a code from the secret this session set up (the step-up enable_totp: the new
 * authenticator is in hand); returns the recovery codes. A wrong code counts against the session's budget.
 */
export async function enableTotp(deps: Deps, ask: StepUpAsk<"enable_totp">, code: string): Promise<string[]> {
  const now = new Date();
  const { claims } = ask;
  let started = await beginStepUp(deps, ask, now);
  let user = started.user;
  if (user.totpEnabledAt === null) {
    const proof = await proveNewTotpCode(deps, started, code, now);
    const { sealed } = proof;
    const codes = await recoveryCodesFor(deps, sealed);
    // The change, its audit row and its "this was not me" link: one batch, so none stands without the others.
    const turnedOn = totpTurnedAt(true, now);
    const notMe = await notMeLink(deps.db, user.id, `totp:${now.getTime()}`, claims.sid, now, turnedOn);
    const { enabled } = await batch(deps.db, {
      // Only while this session is live: a reset that ended it meanwhile wins.
      enabled: enableTotpRow(
        deps.db,
        proof.userId,
        sealed,
        proof.step,
        await Promise.all(codes.map(recoveryHash)),
        now,
        claims.sid,
        sessionLive(deps.db, claims.sid, now),
      ),
      audited: auditRowIf(deps, "totp_enabled", { user_id: user.id, session_id: claims.sid }, turnedOn),
      notMeLink: notMe.statement,
      ...passed(deps, started),
    });
    if (enabled[0]) {
      logEvent(deps, "totp_enabled", { user_id: user.id, session_id: claims.sid });
      securityNotice(deps, user, "Two-step sign-in with an authenticator app was turned on for your account", notMe.token);
      return codes;
    }
    // Another request enabled it meanwhile (maybe this one's twin), or a newer setup replaced the secret.
    started = await beginStepUp(deps, ask, now);
    user = started.user;
    if (user.totpEnabledAt === null) {
      await endCheck(deps.db, started.check);
      throw new Refusal("invalid_mfa_code", "A newer setup replaced this secret: use the code of the newest one");
    }
  }
  return codesAgain(deps, started, code, now);
}

/**
 * TOTP is on already: the same enable again (its answer lost, or sent twice at once) within
 * RETRY_GRACE seconds gets the same recovery codes, while none has been used. Its code (any
 * of the window: the enable's own has been accepted already) counts against the session's budget.
 */
async function codesAgain(deps: Deps, started: StartedStepUp<"enable_totp">, code: string, now: Date): Promise<string[]> {
  const { user, check } = started;
  const sealed = user.totpSecret;
  const recent = user.totpEnabledAt !== null && now.getTime() - user.totpEnabledAt.getTime() <= deps.config.RETRY_GRACE * 1000;
  // Only to the session that enabled it: its answer was lost.
  if (!recent || !sealed || user.recoveryCodes?.length !== RECOVERY_CODES || user.totpEnabledBy !== started.ask.claims.sid) {
    await endCheck(deps.db, check);
    throw new Refusal("mfa_already_enabled");
  }
  if ((await verifyTotp(await openSecret(deps, user.id, sealed), code, now)) === null) return failStepUp(deps, started, "wrong_code");
  await endCheck(deps.db, check);
  const codes = await recoveryCodesFor(deps, sealed);
  const hashes = await Promise.all(codes.map(recoveryHash));
  if (!hashes.every((h) => user.recoveryCodes?.includes(h))) throw new Refusal("mfa_already_enabled");
  return codes;
}

/** Turns TOTP off after the step-up (the password and a code, or a recovery code, spent by it). */
export async function disableTotp(deps: Deps, ask: StepUpAsk<"disable_totp">, input: StepUpInput): Promise<void> {
  const now = new Date();
  const { claims } = ask;
  const started = await beginStepUp(deps, ask, now);
  if (!started.user.totpEnabledAt) {
    await endCheck(deps.db, started.check);
    throw new Refusal("mfa_not_enabled");
  }
  const { factor: proof } = await proveStepUp(deps, started, input, now);
  const disabled = { user_id: started.user.id, session_id: claims.sid, method: proof ? methodOf(proof) : "none" };
  // REQUIRE_MFA: TOTP goes only if a passkey stays (checked in the statement: a passkey removed meanwhile counts).
  const required = mfaRequiredFor(deps.config, started.user.roles) && !started.user.isGuest;
  const { turnedOff } = await batch(deps.db, {
    turnedOff: disableTotpRow(deps.db, started.user.id, now, required ? anotherSecondFactor(started.user.id, { totp: true }) : undefined),
    audited: auditRowIf(deps, "totp_disabled", disabled, totpTurnedAt(false, now)),
  });
  if (!turnedOff[0]) {
    const after = await findUserById(deps.db, started.user.id);
    // Turned off meanwhile, or still on because it is the account's last second factor.
    throw after?.totpEnabledAt && required ? new Refusal("mfa_required") : new Refusal("mfa_not_enabled");
  }
  logEvent(deps, "totp_disabled", disabled);
  securityNotice(deps, started.user, "Two-step sign-in with an authenticator app was turned off for your account");
}

/**
 * The second step of a login with TOTP on. The challenge names the user and the password version the
 * first step checked; the code goes through the login lock (its check starts in the round trip that
 * reads the challenge). On success one batch uses the challenge (only while the code is usable: a
 * replay, or a second request with the same code, finds them used), opens the session only if this
 * request used it and the code is still usable, and spends the code with the lock's reset in one
 * statement, only if the session was written.
 */
export async function completeMfaLogin(deps: Deps, token: string, offered: SecondFactor): Promise<{ user: User; issued: Issued }> {
  const { db } = deps;
  const now = new Date();
  const id = await sha256Base64Url(token);
  const challenge = challengeAccount(id, "mfa_login", now);
  const { user, check } = await startSecondStep(deps, challenge.who, now, challenge.columns, deps.limitAccount);
  if (!user || !check) {
    const again = await answerAgain(deps, id, token, now);
    if (again) return again;
    throw new Refusal("invalid_challenge", "This sign-in step is unknown, used or expired: sign in again");
  }

  const proof = await proofOf(deps, user, offered, now);
  if (!proof) {
    await refuseJustUsed(deps, user, offered, now, "login", () => endCheck(db, check));
    await failSecondStep(deps, user, check, now, offered.code !== undefined ? "wrong_code" : "wrong_recovery_code");
    await countChallengeFailure(db, id, now, MAX_CODES_PER_CHALLENGE);
    throw new Refusal("invalid_mfa_code");
  }

  // The session's id is what the challenge records as its user; its refresh token is derived from the
  // challenge: a retry after a lost answer can be answered again (answerAgain).
  const session = { id: crypto.randomUUID(), refreshToken: await successorOf(deps.config, `mfa:${token}`) };
  // The code is spent, and the lock's count cleared, only if the session was written: a second step
  // refused at the last moment (the account disabled meanwhile) leaves a recovery code unspent.
  const written = sessionExists(db, session.id);
  const method = methodOf(proof);
  const left = (user.recoveryCodes?.length ?? 1) - 1;
  const { issued } = await decideSignIn(deps, user, { kind: "second_step", method, first: user.challengeFirstFactor }, now, {
    refused: { checkEnded: endCheck(db, check) },
    session: {
      session,
      seen: user,
      passwordVersion: user.challengePasswordVersion ?? -1,
      before: { challengeUsed: consumeChallenge(db, id, "mfa_login", now, session.id, { proof }, await clientFingerprint(deps)) },
      condition: consumedWhileUsable(db, id, session.id, user.id, proof),
      after: { proofSpent: spendProof(db, user.id, proof, now, written, { passCheck: true }), checkEnded: endCheck(db, check) },
      detail: { method },
      // Recorded with the sign-in, in its audit statement.
      alsoAudited: "recoveryHash" in proof ? [{ event: "recovery_code_used", fields: { user_id: user.id, left } }] : [],
    },
    // That code, or this challenge, was used meanwhile; else the password changed since the first step.
    changed: async (results) => (results.challengeUsed[0] ? "invalid_challenge" : new Refusal("invalid_mfa_code")),
  });
  if ("recoveryHash" in proof) securityNotice(deps, user, `A recovery code was used to sign in to your account (${left} left)`);
  return { user, issued };
}

/**
 * The same client (IP and User-Agent) sending a used challenge again within RETRY_GRACE
 * seconds: the answer to the request that used it was lost. It gets that sign-in's session again (a
 * new access token, the same refresh token), unless the session has been refreshed or ended since.
 * The challenge is a 256-bit secret only the password step handed out; the code is spent already.
 */
async function answerAgain(deps: Deps, id: string, token: string, now: Date): Promise<{ user: User; issued: Issued } | null> {
  const used = await findUsedChallenge(deps.db, id, "mfa_login");
  if (!used?.usedAt || !used.usedBy || !used.userId) return null;
  if (now.getTime() - used.usedAt.getTime() > deps.config.RETRY_GRACE * 1000 || used.usedByClient !== (await clientFingerprint(deps))) return null;
  const issued = await reissueSignIn(deps, used.usedBy, await successorOf(deps.config, `mfa:${token}`));
  const user = issued ? await findUserById(deps.db, used.userId) : undefined;
  if (!issued || !user) return null;
  log("mfa_login_retried", { request_id: deps.requestId, user_id: user.id, session_id: used.usedBy });
  return { user, issued };
}
