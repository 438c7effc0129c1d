import { eq } from "drizzle-orm";
import { audit } from "../audit";
import type { Config } from "../config";
import { consumeAccountToken, consumedBy, endLinks, issueAccountToken, usableFor, type TokenPurpose } from "../db/account-tokens";
import { uniqueViolation } from "../db/client";
import { users, type User } from "../db/schema";
import { totpIsOff } from "../db/mfa";
import { revokeUserSessions } from "../db/sessions";
import { changeEmail, deleteUser, epochState, findUserById, markEmailVerified, resetPassword, updateByAdmin } from "../db/users";
import type { Deps } from "../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../encoding";
import { ApiError } from "../errors";
import { appLink, compose, sendAfterAnswer } from "../mail";
import { failPasswordCheck, passPasswordCheck, startPasswordCheck } from "./lockout";
import { hashPassword, verifyPassword } from "./passwords";
import { revokeEpoch } from "./revocations";
import { publishEpoch, retryAfterAnswer } from "./sessions";
import type { AccessClaims } from "./tokens";

/**
 * Account recovery and management: mailed single-use links (email verification, password reset,
 * email change), account deletion, and an admin's changes to a user. Knows nothing of HTTP.
 *
 * Every link carries 256 random bits; only its SHA-256 is stored; a newer link of the same purpose
 * supersedes older ones; using one is a single conditional statement (exactly one of two wins).
 */

const HOUR = 60 * 60 * 1000;
const LIFETIME: Record<TokenPurpose, number> = { verify_email: 24 * HOUR, reset_password: HOUR / 2, change_email: 24 * HOUR };
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const invalidLink = () => new ApiError("invalid_link");

function requireAppUrl(config: Config) {
  // Without it no link can be made: a deployment mistake, not the client's.
  if (!config.APP_URL) throw new Error("APP_URL is not set: mailed links need the app page that completes them");
}

async function newToken() {
  const token = toBase64Url(randomBytes(32));
  return { token, tokenHash: await sha256Base64Url(token) };
}

/** Mails a verification link for the user's current address (after registering, or on request). */
export async function requestEmailVerification(deps: Deps, userId: string): Promise<void> {
  requireAppUrl(deps.config);
  const now = new Date();
  const { token, tokenHash } = await newToken();
  const issued = await issueAccountToken(deps.db, eq(users.id, userId), { tokenHash, purpose: "verify_email", now, expiresAt: new Date(now.getTime() + LIFETIME.verify_email) });
  if (!issued) return; // no address on the account
  const mail = compose(issued.email, "Confirm your email address", ["Confirm that this is your address by opening the link below. It is valid for 24 hours."], {
    url: appLink(deps.config, "verify-email", token),
    label: "Confirm my address",
  });
  sendAfterAnswer(deps, mail, { user_id: userId, purpose: "verify_email" });
}

export async function verifyEmail(deps: Deps, token: string): Promise<void> {
  const { db } = deps;
  if (!TOKEN_FORMAT.test(token)) throw invalidLink();
  const tokenHash = await sha256Base64Url(token);
  const now = new Date();
  const link = await usableFor(db, tokenHash, "verify_email", now);
  if (!link) throw invalidLink();
  // The use and its effect in one batch: a failure leaves the link usable. Only if the address is
  // still the one the link was sent to.
  const usedBy = crypto.randomUUID();
  const [used, verified] = await db.batch([
    consumeAccountToken(db, tokenHash, "verify_email", now, usedBy),
    markEmailVerified(db, link.userId, link.email, now, consumedBy(db, tokenHash, usedBy)),
  ]);
  if (!used[0] || !verified[0]) throw invalidLink();
  await audit(deps, "email_verified", { user_id: link.userId });
}

/**
 * Mails a reset link when the address belongs to an account. The same statements run, and the same
 * answer goes back, whether or not it does; the mail goes out after the answer.
 */
export async function forgotPassword(deps: Deps, email: string): Promise<void> {
  requireAppUrl(deps.config);
  const now = new Date();
  const { token, tokenHash } = await newToken();
  const issued = await issueAccountToken(deps.db, eq(users.email, email.toLowerCase()), {
    tokenHash,
    purpose: "reset_password",
    now,
    expiresAt: new Date(now.getTime() + LIFETIME.reset_password),
  });
  if (!issued) return;
  const mail = compose(issued.email, "Reset your password", ["Someone asked to reset the password of your account. If it was you, open the link below within 30 minutes. If not, ignore this mail: nothing changes."], {
    url: appLink(deps.config, "reset-password", token),
    label: "Choose a new password",
  });
  sendAfterAnswer(deps, mail, { user_id: issued.userId, purpose: "reset_password" });
}

/**
 * Sets a new password from a reset link. One batch, every write conditional on this request using
 * the link: the new hash (a new password version), every session ended, a new epoch (KV), the lock
 * cleared, and pending email-change links ended (a hijacker's change must not outlive the reset).
 */
export async function completePasswordReset(deps: Deps, token: string, newPassword: string): Promise<void> {
  const { db, config } = deps;
  if (!TOKEN_FORMAT.test(token)) throw invalidLink();
  const tokenHash = await sha256Base64Url(token);
  const now = new Date();
  // No password hash is spent on a link that cannot work.
  const userId = (await usableFor(db, tokenHash, "reset_password", now))?.userId;
  if (!userId) throw invalidLink();
  const passwordHash = await hashPassword(newPassword, { iterations: config.PASSWORD_ITERATIONS, pepper: config.PASSWORD_PEPPER });
  const usedBy = crypto.randomUUID();
  const consumed = consumedBy(db, tokenHash, usedBy);
  const [used, , , , [state]] = await db.batch([
    consumeAccountToken(db, tokenHash, "reset_password", now, usedBy),
    resetPassword(db, userId, passwordHash, now, consumed),
    revokeUserSessions(db, userId, now, undefined, consumed),
    endLinks(db, userId, ["change_email", "reset_password"], now, consumed),
    epochState(db, userId),
  ]);
  if (!used[0]) throw invalidLink(); // another request used it first
  await audit(deps, "password_reset", { user_id: userId });
  if (!state) return;
  try {
    await publishEpoch(deps, userId, state, now);
  } catch {
    // The link is used up, so a retry could not repeat this: the answer stays 200 and KV is
    // written after it (the refresh tokens are dead in D1 already).
    retryAfterAnswer(deps, () => publishEpoch(deps, userId, state, now));
  }
}

/** Checks the current password for a sensitive change, through the same account lock as login. */
async function checkPassword(deps: Deps, user: User, password: string, now: Date) {
  const { check } = await startPasswordCheck(deps, user.id, now);
  const ok = await verifyPassword(password, user.passwordHash, { iterations: deps.config.PASSWORD_ITERATIONS, pepper: deps.config.PASSWORD_PEPPER });
  if (!ok || !check) {
    await failPasswordCheck(deps, user.id, check, now);
    throw new ApiError("invalid_credentials", "The current password is wrong");
  }
  // With TOTP on, a right password alone does not clear the failures of wrong codes.
  await deps.db.batch([...passPasswordCheck(deps, user.id, check, now, totpIsOff(deps.db, user.id))]);
}

/** The user behind a valid access token; one deleted since is as good as an invalid token. */
export async function userOf(deps: Deps, claims: AccessClaims): Promise<User> {
  const user = await findUserById(deps.db, claims.sub);
  if (!user) throw new ApiError("invalid_token", "The user behind this token no longer exists");
  return user;
}

/** Mails a confirmation link to the new address and a notice to the old one; nothing changes yet. */
export async function requestEmailChange(deps: Deps, claims: AccessClaims, newEmail: string, currentPassword: string): Promise<void> {
  requireAppUrl(deps.config);
  const user = await userOf(deps, claims);
  const email = newEmail.toLowerCase();
  if (email === user.email) throw new ApiError("validation_failed", undefined, { new_email: "is already your address" });
  const now = new Date();
  // The password first: whether an address is taken is told only to the account's owner.
  await checkPassword(deps, user, currentPassword, now);
  const taken = await deps.db.select({ id: users.id }).from(users).where(eq(users.email, email)).get();
  if (taken) throw new ApiError("email_taken");
  const { token, tokenHash } = await newToken();
  await issueAccountToken(deps.db, eq(users.id, user.id), { tokenHash, purpose: "change_email", email, now, expiresAt: new Date(now.getTime() + LIFETIME.change_email) });
  sendAfterAnswer(deps, compose(email, "Confirm your new email address", [`Confirm that ${user.username}'s account should use this address from now on.`], { url: appLink(deps.config, "confirm-email", token), label: "Use this address" }), {
    user_id: user.id,
    purpose: "change_email",
  });
  if (user.email) {
    sendAfterAnswer(deps, compose(user.email, "Your email address is about to change", ["Someone signed in to your account asked to move it to another email address. If it was not you, change your password now."]), {
      user_id: user.id,
      purpose: "email_change_notice",
    });
  }
  await audit(deps, "email_change_requested", { user_id: user.id });
}

/** Moves the account to the address a change link was sent to, if that address is still free. */
export async function confirmEmailChange(deps: Deps, token: string): Promise<void> {
  const { db } = deps;
  if (!TOKEN_FORMAT.test(token)) throw invalidLink();
  const tokenHash = await sha256Base64Url(token);
  const now = new Date();
  const link = await usableFor(db, tokenHash, "change_email", now);
  if (!link) throw invalidLink();
  const usedBy = crypto.randomUUID();
  const consumed = consumedBy(db, tokenHash, usedBy);
  let used;
  try {
    // One batch: the use, the new address, and the end of links sent to the old one. If the address
    // was taken meanwhile the unique index fails the whole batch, and the link stays usable.
    [used] = await db.batch([
      consumeAccountToken(db, tokenHash, "change_email", now, usedBy),
      changeEmail(db, link.userId, link.email, now, consumed),
      endLinks(db, link.userId, ["reset_password", "verify_email"], now, consumed),
    ]);
  } catch (err) {
    if (uniqueViolation(err)?.includes("email")) throw new ApiError("email_taken", "That address was taken in the meantime");
    throw err;
  }
  if (!used[0]) throw invalidLink(); // another request used it first
  await audit(deps, "email_changed", { user_id: link.userId });
}

/**
 * Deletes the account (sessions and links go with it, by cascade) after a password check through the
 * login lock, and revokes every access token of the user for good: ids are never reused, so the KV
 * entry names an epoch no token can reach, for as long as any token could live. Repeatable: a
 * retry after a failed KV write (the user is gone, the token still passes) writes it again.
 */
export async function deleteAccount(deps: Deps, claims: AccessClaims, currentPassword: string): Promise<void> {
  const now = new Date();
  const user = await findUserById(deps.db, claims.sub);
  if (user) {
    await checkPassword(deps, user, currentPassword, now);
    await deleteUser(deps.db, user.id);
    // Without personal data: no address, no name, no IP.
    await audit({ ...deps, ip: undefined }, "account_deleted", { user_id: user.id });
  }
  await revokeEpoch(deps.kv, claims.sub, { epoch: Number.MAX_SAFE_INTEGER, kept: null, until: new Date(now.getTime() + LONGEST_ACCESS_TOKEN_MS) });
}

// ACCESS_TOKEN_TTL's upper bound (config.ts): no token outlives this.
const LONGEST_ACCESS_TOKEN_MS = 86_400 * 1000;

/** An admin changes a user's roles or disables them: every session of the user ends at once. */
export async function updateUserByAdmin(deps: Deps, admin: AccessClaims, userId: string, change: { roles?: string[]; disabled?: boolean }): Promise<User> {
  if (userId === admin.sub) {
    if (change.disabled) throw new ApiError("validation_failed", undefined, { disabled: "you cannot disable your own account" });
    if (change.roles && !change.roles.includes("admin")) throw new ApiError("validation_failed", undefined, { roles: "you cannot remove your own admin role" });
  }
  const now = new Date();
  const [[updated], , , [state]] = await deps.db.batch([
    updateByAdmin(deps.db, userId, change, now),
    revokeUserSessions(deps.db, userId, now),
    endLinks(deps.db, userId, ["reset_password", "change_email", "verify_email"], now),
    epochState(deps.db, userId),
  ]);
  if (!updated) throw new ApiError("not_found", "No such user");
  // Audited before KV: a 503 below still leaves the record of what was done and by whom.
  await audit(deps, "admin_user_updated", { user_id: userId, by: admin.sub, roles: change.roles?.join(","), disabled: change.disabled });
  if (state) await publishEpoch(deps, userId, state, now); // a failure is a 503: the admin repeats the change
  return updated;
}
