import { audit, auditRowIf, logEvent } from "../audit";
import { ConfigError } from "../config";
import { countChallengeFailure, consumeChallenge, consumedBy, totpIsOff, totpTurnedAt, disableTotp as disableTotpRow, enableTotp as enableTotpRow, findChallenge, findUsedChallenge, spendProof, storePendingTotp, type Proof } from "../db/mfa";
import { endCheck } from "../db/password-checks";
import type { User } from "../db/schema";
import { findUserById } from "../db/users";
import type { Deps } from "../deps";
import { sha256Base64Url } from "../encoding";
import { log } from "../log";
import { ApiError } from "../errors";
import { securityNotice } from "../mail";
import { userOf } from "./account";
import { auditLock, failPasswordCheck, passPasswordCheck, startPasswordCheck } from "./lockout";
import { verifyPassword } from "./passwords";
import { derive, open, seal } from "./secrets";
import { successorOf } from "./refresh-tokens";
import { clientFingerprint, openSession, reissueSignIn, type Issued } from "./sessions";
import type { AccessClaims } from "./tokens";
import { newTotpSecret, otpauthUri, toBase32, verifyTotp } from "./totp";

/**
 * TOTP as a second step of login, with single-use recovery codes. Knows nothing of HTTP.
 *
 * - The secret is sealed at rest (auth/secrets.ts); recovery codes are stored as SHA-256 only (80
 *   random bits each, so a hash cannot be reversed by guessing).
 * - A code is good once: its time step must be later than the last one accepted, and accepting it
 *   is the same conditional statement that uses it (db/mfa.ts), so of two requests one wins.
 * - Every code check (the login's second step, fresh checks, a retried enable) goes through the
 *   login lock: a wrong code is a failure like a wrong password, and only a check that includes a
 *   right code clears the count.
 */

const RECOVERY_CODES = 10;
/** Wrong codes one login challenge takes; then the password is asked again (the lock usually comes first). */
const MAX_CODES_PER_CHALLENGE = 5;

/**
 * The recovery codes of a TOTP setup: 80 bits each, as four groups of four base32 characters
 * ("k7qp-2m4x-9hta-vw3e"). Derived from the sealed secret (random per setup) under the MFA key, so a
 * retried enable can be shown the same codes again; only their hashes are stored.
 */
async function recoveryCodesFor(deps: Deps, sealedSecret: string): Promise<string[]> {
  const codes = [];
  for (let i = 0; i < RECOVERY_CODES; i++) {
    const bits = (await derive(deps.config.MFA_ENCRYPTION_KEY, "edge-auth-api recovery codes v1", `${sealedSecret}|${i}`)).slice(0, 10);
    codes.push(toBase32(bits).toLowerCase().match(/.{4}/g)!.join("-"));
  }
  return codes;
}
/** Case, spaces and dashes do not matter when typing one back. */
const recoveryHash = (code: string) => sha256Base64Url(code.toLowerCase().replace(/[\s-]/g, ""));

/** What a request offers as its second factor: exactly one of the two (schemas.ts checks). */
export interface SecondFactor {
  code?: string;
  recovery_code?: string;
}

/** The proof `offered` makes for `user` now, or null when it is wrong, already used, or TOTP is off. */
async function proofOf(deps: Deps, user: User, offered: SecondFactor, now: Date): Promise<Proof | null> {
  if (!user.totpEnabledAt || !user.totpSecret) return null;
  if (offered.code !== undefined) {
    const secret = await openSecret(deps, user.id, user.totpSecret);
    const step = await verifyTotp(secret, offered.code, now, user.totpLastStep);
    return step === null ? null : { step };
  }
  const hash = await recoveryHash(offered.recovery_code ?? "");
  return user.recoveryCodes?.includes(hash) ? { recoveryHash: hash } : null;
}

/** The user's TOTP secret. One that does not open means the key was replaced: the operator's problem, said so in the log. */
async function openSecret(deps: Deps, userId: string, sealed: string) {
  try {
    return await open(deps.config.MFA_ENCRYPTION_KEY, userId, sealed);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(["MFA_ENCRYPTION_KEY: a stored TOTP secret does not open with it (was the key replaced?)"]);
  }
}

const method = (proof: Proof) => ("step" in proof ? "totp" : "recovery_code");

/** What a fresh check takes: the current password, and a code or a recovery code while TOTP is on. */
export interface FreshCheckInput extends SecondFactor {
  current_password: string;
}

/**
 * A fresh check before a change to the ways into the account: the current password and, while TOTP
 * is on, a code or a recovery code, checked together through the login lock (a wrong one counts like
 * a failed login). Returns the user, the proof (none while TOTP is off) and the check, which the
 * caller passes in its own batch (passPasswordCheck).
 */
async function freshCheck(deps: Deps, claims: AccessClaims, input: FreshCheckInput, now: Date): Promise<{ user: User; proof: Proof | null; check: string }> {
  const { user, check } = await startPasswordCheck(deps, claims.sub, now);
  if (!user) throw new ApiError("invalid_token", "The user behind this token no longer exists");
  const passwordOk = await verifyPassword(input.current_password, user.passwordHash, { iterations: deps.config.PASSWORD_ITERATIONS, pepper: deps.config.PASSWORD_PEPPER });
  const needsFactor = user.totpEnabledAt !== null;
  if (passwordOk && needsFactor && input.code === undefined && input.recovery_code === undefined) {
    await endCheck(deps.db, check); // not a guess: the client did not know
    throw new ApiError("invalid_mfa_code", "Two-step sign-in is on: send code or recovery_code with the password");
  }
  const proof = passwordOk && needsFactor ? await proofOf(deps, user, input, now) : null;
  if (!passwordOk || (needsFactor && !proof)) {
    await failSecondStep(deps, user, check, now, passwordOk ? "wrong_code" : "wrong_password");
    throw passwordOk ? new ApiError("invalid_mfa_code") : new ApiError("invalid_credentials", "The current password is wrong");
  }
  return { user, proof, check };
}

/**
 * Records a failed check with its audit row; a failure that locks the account after a right password
 * means someone knows the password, and the owner is told.
 */
async function failSecondStep(deps: Deps, user: User, check: string, now: Date, reason: "wrong_code" | "wrong_recovery_code" | "wrong_password") {
  const lock = await failPasswordCheck(deps, user.id, check, now, reason === "wrong_password" ? "login_failed" : "mfa_failed", reason);
  await auditLock(deps, user.id, lock);
  if (lock && reason !== "wrong_password") {
    securityNotice(deps, user, "Someone who knows your password entered wrong two-step codes, and your account is locked for a while. If it was not you, change your password now");
  }
}

/** The fresh check with its proof spent and the check passed, in one batch: before a new way in is added. */
export async function confirmIdentity(deps: Deps, claims: AccessClaims, input: FreshCheckInput): Promise<User> {
  const now = new Date();
  const { user, proof, check } = await freshCheck(deps, claims, input, now);
  const pass = passPasswordCheck(deps, user.id, check, now);
  if (!proof) {
    await deps.db.batch([...pass]);
    return user;
  }
  const [spent] = await deps.db.batch([spendProof(deps.db, user.id, proof, now), ...pass]);
  if (!spent[0]) throw new ApiError("invalid_mfa_code"); // that code was used meanwhile
  return user;
}

/**
 * Starts (or restarts) TOTP setup after a password check: a new secret, pending until a code from it
 * arrives at enable. A stolen access token alone cannot put an authenticator of its own on the account.
 */
export async function setupTotp(deps: Deps, claims: AccessClaims, currentPassword: string): Promise<{ secret: string; uri: string }> {
  if ((await userOf(deps, claims)).totpEnabledAt) throw new ApiError("mfa_already_enabled");
  const user = await confirmIdentity(deps, claims, { current_password: currentPassword });
  const secret = newTotpSecret();
  const [stored] = await storePendingTotp(deps.db, user.id, await seal(deps.config.MFA_ENCRYPTION_KEY, user.id, secret), new Date());
  if (!stored) throw new ApiError("mfa_already_enabled"); // enabled meanwhile
  return { secret: toBase32(secret), uri: otpauthUri(deps.config.APP_NAME, user.username, secret) };
}

/** Turns TOTP on with a code from the pending secret; returns the recovery codes. */
export async function enableTotp(deps: Deps, claims: AccessClaims, code: string): Promise<string[]> {
  let user = await userOf(deps, claims);
  if (!user.totpSecret) throw new ApiError("mfa_not_enabled", "Start with POST /mfa/totp/setup");
  const now = new Date();
  if (user.totpEnabledAt === null) {
    const sealed = user.totpSecret;
    // Not counted toward the lock: the caller was given this secret (after a password check); nothing to guess.
    const step = await verifyTotp(await openSecret(deps, user.id, sealed), code, now);
    if (step === null) throw new ApiError("invalid_mfa_code");
    const codes = await recoveryCodesFor(deps, sealed);
    // The change and its audit row: one batch, so neither stands without the other.
    const [[enabled]] = await deps.db.batch([
      enableTotpRow(deps.db, user.id, sealed, step, await Promise.all(codes.map(recoveryHash)), now),
      auditRowIf(deps, "totp_enabled", { user_id: user.id }, totpTurnedAt(true, now)),
    ]);
    if (enabled) {
      logEvent(deps, "totp_enabled", { user_id: user.id });
      securityNotice(deps, user, "Two-step sign-in with an authenticator app was turned on for your account");
      return codes;
    }
    // Another request enabled it meanwhile (maybe this one's twin), or a newer setup replaced the secret.
    user = await userOf(deps, claims);
    if (user.totpEnabledAt === null) throw new ApiError("invalid_mfa_code", "A newer setup replaced this secret: use the code of the newest one");
  }
  return codesAgain(deps, user, code, now);
}

/**
 * TOTP is on already: the same enable again (its answer lost, or sent twice at once) within
 * REFRESH_REUSE_GRACE seconds gets the same recovery codes, while none has been used. TOTP is on, so
 * its code goes through the login lock like any other.
 */
async function codesAgain(deps: Deps, user: User, code: string, now: Date): Promise<string[]> {
  const sealed = user.totpSecret;
  const recent = user.totpEnabledAt !== null && now.getTime() - user.totpEnabledAt.getTime() <= deps.config.REFRESH_REUSE_GRACE * 1000;
  if (!recent || !sealed || user.recoveryCodes?.length !== RECOVERY_CODES) throw new ApiError("mfa_already_enabled");
  const { check } = await startPasswordCheck(deps, user.id, now);
  // Any code of the window: the enable's own code has been accepted already.
  if ((await verifyTotp(await openSecret(deps, user.id, sealed), code, now)) === null) {
    await failSecondStep(deps, user, check, now, "wrong_code");
    throw new ApiError("invalid_mfa_code");
  }
  await endCheck(deps.db, check);
  const codes = await recoveryCodesFor(deps, sealed);
  const hashes = await Promise.all(codes.map(recoveryHash));
  if (!hashes.every((h) => user.recoveryCodes?.includes(h))) throw new ApiError("mfa_already_enabled");
  return codes;
}

/** Turns TOTP off after a fresh check (the password and a code, or a recovery code). */
export async function disableTotp(deps: Deps, claims: AccessClaims, input: FreshCheckInput): Promise<void> {
  const now = new Date();
  if (!(await userOf(deps, claims)).totpEnabledAt) throw new ApiError("mfa_not_enabled");
  const { user, proof, check } = await freshCheck(deps, claims, input, now);
  if (!proof) throw new ApiError("mfa_not_enabled"); // turned off meanwhile
  // The failure count is cleared only if TOTP is off by then (the code was not used meanwhile).
  const disabled = { user_id: user.id, method: method(proof) };
  const [done] = await deps.db.batch([
    disableTotpRow(deps.db, user.id, proof, now),
    ...passPasswordCheck(deps, user.id, check, now, totpIsOff(deps.db, user.id)),
    auditRowIf(deps, "totp_disabled", disabled, totpTurnedAt(false, now)),
  ]);
  if (!done[0]) throw new ApiError("invalid_mfa_code"); // that code was used meanwhile
  logEvent(deps, "totp_disabled", disabled);
  securityNotice(deps, user, "Two-step sign-in with an authenticator app was turned off for your account");
}

/**
 * The second step of a login with TOTP on. The challenge names the user and the password version the
 * first step checked; the code goes through the login lock. On success one batch uses the challenge
 * and the code (both conditional: a replay, or a second request with the same code, finds them used),
 * and opens the session only if this request used them.
 */
export async function completeMfaLogin(deps: Deps, token: string, offered: SecondFactor): Promise<{ user: User; issued: Issued }> {
  const { db } = deps;
  const now = new Date();
  const id = await sha256Base64Url(token);
  const challenge = await findChallenge(db, id, "mfa_login", now);
  if (!challenge?.userId) {
    const again = await answerAgain(deps, id, token, now);
    if (again) return again;
    throw new ApiError("invalid_challenge", "This sign-in step is unknown, used or expired: sign in again");
  }
  await deps.limitAccount?.(`user:${challenge.userId}`); // the same per-account budget as the password step
  const { user, check } = await startPasswordCheck(deps, challenge.userId, now);
  if (!user) throw new ApiError("invalid_challenge");

  const proof = await proofOf(deps, user, offered, now);
  if (!proof) {
    await failSecondStep(deps, user, check, now, offered.code !== undefined ? "wrong_code" : "wrong_recovery_code");
    await countChallengeFailure(db, id, now, MAX_CODES_PER_CHALLENGE);
    throw new ApiError("invalid_mfa_code");
  }

  // The session's id is what the challenge records as its user; its refresh token is derived from the
  // challenge: a retry after a lost answer can be answered again (answerAgain).
  const session = { id: crypto.randomUUID(), refreshToken: await successorOf(deps.config.JWT_PRIVATE_KEY, `mfa:${token}`) };
  const used = consumedBy(db, id, session.id);
  const opened = await openSession(deps, user, now, {
    session,
    passwordVersion: challenge.passwordVersion ?? -1,
    before: [consumeChallenge(db, id, "mfa_login", now, session.id, { proof }, await clientFingerprint(deps))],
    condition: used,
    after: [spendProof(db, user.id, proof, now, used), ...passPasswordCheck(deps, user.id, check, now, used)],
    detail: { method: method(proof) },
  });
  if (!opened.issued) {
    const [consumed] = opened.before as { userId: string }[][];
    if (!consumed?.[0]) throw new ApiError("invalid_mfa_code"); // that code, or this challenge, was used meanwhile
    const now2 = await findUserById(db, user.id);
    await audit(deps, "login_failed", { user_id: user.id, reason: now2?.disabledAt ? "account_disabled" : "changed_during_login" });
    throw new ApiError(now2?.disabledAt ? "account_disabled" : "invalid_challenge");
  }
  if ("recoveryHash" in proof) {
    const left = (user.recoveryCodes?.length ?? 1) - 1;
    await audit(deps, "recovery_code_used", { user_id: user.id, left });
    securityNotice(deps, user, `A recovery code was used to sign in to your account (${left} left)`);
  }
  return { user, issued: opened.issued };
}

/**
 * The same client (IP and User-Agent) sending a used challenge again within REFRESH_REUSE_GRACE
 * seconds: the answer to the request that used it was lost. It gets that sign-in's session again (a
 * new access token, the same refresh token), unless the session has been refreshed or ended since.
 * The challenge is a 256-bit secret only the password step handed out; the code is spent already.
 */
async function answerAgain(deps: Deps, id: string, token: string, now: Date): Promise<{ user: User; issued: Issued } | null> {
  const used = await findUsedChallenge(deps.db, id, "mfa_login");
  if (!used?.usedAt || !used.usedBy || !used.userId) return null;
  if (now.getTime() - used.usedAt.getTime() > deps.config.REFRESH_REUSE_GRACE * 1000 || used.usedByClient !== (await clientFingerprint(deps))) return null;
  const issued = await reissueSignIn(deps, used.usedBy, await successorOf(deps.config.JWT_PRIVATE_KEY, `mfa:${token}`));
  const user = issued ? await findUserById(deps.db, used.userId) : undefined;
  if (!issued || !user) return null;
  log("mfa_login_retried", { request_id: deps.requestId, user_id: user.id, session_id: used.usedBy });
  return { user, issued };
}
