import { auditRow, logEvent } from "../../audit";
import { batch, joined, type Statements } from "../../db/batch";
import { insertChallenge, totpIsOff } from "../../db/mfa";
import { endCheck } from "../../db/password-checks";
import type { User } from "../../db/schema";
import { rehashPassword } from "../../db/users";
import { afterAnswer, type Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { Refusal } from "../core/errors";
import { auditLock, failPasswordCheck, passPasswordCheck, startLogin } from "../core/lockout";
import { dummyVerify, hashPassword, needsRehash, passwordOptions, verifyPassword } from "../core/passwords";
import { type Issued, openSession, refusedSignIn } from "../core/sign-in";
import { amrOf, hasPassword } from "../core/ways-in";
import { requestEmailVerification } from "../mail/verification";

/** Sign-in with a username (or address) and password. Knows nothing of HTTP. */

export interface LoginInput {
  username: string; // username or email
  password: string;
}

/** The second step a login with TOTP on hands out: a single-use token for POST /login/mfa (auth/totp/mfa.ts). */
export interface MfaChallenge {
  token: string;
  expiresIn: number;
}

/** A login's answer: tokens, or (TOTP on) the challenge for its second step (auth/totp/mfa.ts). */
export type LoginResult = { user: User; issued: Issued } | { user: User; challenge: MfaChallenge };

export async function login(deps: Deps, input: LoginInput): Promise<LoginResult> {
  const { db, config } = deps;
  const options = passwordOptions(config);
  const now = new Date();
  // The account and the start of its password check: one round trip (and the per-account limit).
  const { user, check } = await startLogin(deps, input.username, now, deps.limitAccount);

  // Same work and the same error whether the user is unknown, has no password (social only) or the password is wrong.
  const ok = user && hasPassword(user) ? await verifyPassword(input.password, user.passwordHash, options) : await dummyVerify(input.password, options);
  if (!user || !ok || !check) {
    const lock = await failPasswordCheck(deps, user?.id, check, now); // with its login_failed row
    if (user) await auditLock(deps, user.id, lock);
    throw new Refusal("invalid_credentials");
  }
  // Told only to someone who knows the password.
  if (user.disabledAt || (config.REQUIRE_VERIFIED_EMAIL === "on" && !user.emailVerifiedAt)) {
    const refused = { user_id: user.id, reason: user.disabledAt ? "account_disabled" : "email_unverified" };
    await batch(db, joined(passPasswordCheck(deps, user.id, check, now), { audited: auditRow(deps, "login_failed", refused) }));
    logEvent(deps, "login_failed", refused);
    if (user.disabledAt) throw new Refusal("account_disabled");
    // They know the password: a fresh link goes to the address (within the link limits), so an
    // account whose first link was lost is never stuck.
    await afterAnswer(deps, "verification_on_login", () => requestEmailVerification(deps, user));
    throw new Refusal("email_unverified", "Verify your email address first: a new link is on its way to it");
  }

  const rehash = needsRehash(user.passwordHash, options)
    ? rehashPassword(db, user.id, user.passwordHash, await hashPassword(input.password, options), now)
    : undefined;
  // TOTP on: half a login. The failure count stays (only the second step clears it), so knowing the
  // password does not buy unlimited guesses at the code.
  if (user.totpEnabledAt) return { user, challenge: await issueMfaChallenge(deps, user, now, { checkEnded: endCheck(db, check), rehash }) };

  const opened = await openSession(deps, user, now, {
    amr: amrOf({ method: "password" }),
    passwordVersion: user.passwordVersion,
    condition: totpIsOff(db, user.id), // TOTP turned on meanwhile: this password alone no longer signs in
    after: joined(passPasswordCheck(deps, user.id, check, now), { rehash }),
  });
  // The password changed, TOTP was turned on, or the account was disabled, while it was being checked.
  if (!opened.issued) throw new Refusal(await refusedSignIn(deps, user.id, { code: "invalid_credentials", reason: "changed_during_login" }));
  return { user, issued: opened.issued };
}

/**
 * Stores the challenge (its SHA-256; bound to the password version as read, and to how the first
 * step was proved: "pwd", or "fed" for a social sign-in) with its audit row and the caller's own
 * statements (the password check's end): one round trip.
 */
export async function issueMfaChallenge(deps: Deps, user: User, now: Date, also: Statements, firstFactor = "pwd"): Promise<MfaChallenge> {
  const token = toBase64Url(randomBytes(32));
  const ttl = deps.config.CHALLENGE_TTL;
  const row = {
    id: await sha256Base64Url(token),
    purpose: "mfa_login" as const,
    userId: user.id,
    passwordVersion: user.passwordVersion,
    firstFactor,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttl * 1000),
  };
  await batch(
    deps.db,
    joined(
      {
        challenge: insertChallenge(deps.db, row),
        audited: auditRow(deps, "mfa_challenge_issued", { user_id: user.id }),
      },
      also,
    ),
  );
  logEvent(deps, "mfa_challenge_issued", { user_id: user.id });
  return { token, expiresIn: ttl };
}
