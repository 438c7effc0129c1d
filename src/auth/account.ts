import { and, eq, isNull, type SQL } from "drizzle-orm";
import { audit } from "../audit";
import { consumeAccountToken, endLinks, endLinksOf, insertLink, issueLink, linkStored } from "../db/account-tokens";
import { uniqueViolation } from "../db/client";
import { users, type User } from "../db/schema";
import { isSessionLive, revokeUserSessions, sessionLive } from "../db/sessions";
import { adminRefusal, changeEmail, deleteUser, emailTaken, epochState, findUserById, markEmailVerified, updateByAdmin, updatedAt } from "../db/users";
import { afterAnswer, type Deps } from "../deps";
import { ApiError } from "../errors";
import { appLink, compose, securityNotice, sendAfterAnswer, sendMail } from "../mail";
import { LIFETIME, LIMITS, invalidLink, newLink, notMeLink, openLink, requireAppUrl } from "./links";
import { revokeEpoch } from "./revocations";
import { publishEpoch } from "./epochs";
import { beginStepUp, proveStepUp, stepUp, type StepUpInput } from "./step-up";
import type { AccessClaims } from "./tokens";

/**
 * Account management: the address (verification, change), deletion, and an admin's changes to a
 * user. Knows nothing of HTTP. Resets and "this was not me" links are in auth/reclaim.ts; the links
 * themselves in auth/links.ts.
 */

/** Mails a verification link (within LIMITS) to an account's unverified address, selected by `who`. */
async function mailVerification(deps: Deps, who: SQL, sessionId: string | null) {
  const { token, row } = await newLink("verify_email", new Date(), { sessionId });
  const issued = await issueLink(deps.db, and(who, isNull(users.emailVerifiedAt))!, row, LIMITS.verify_email);
  if (!issued) return undefined; // no unverified address, or three links are live already
  const lines = [`Confirm that this is your address by opening the link below. It is valid for ${LIFETIME.verify_email / 3_600_000} hours.`];
  return { mail: compose(issued.email, "Confirm your email address", lines, { url: appLink(deps.config, "verify-email", token), label: "Confirm my address" }), userId: issued.userId };
}

/**
 * Mails a verification link for the account's own address: after registering, when a sign-in is
 * refused for an unverified address, or on request by a signed-in session.
 */
export async function requestEmailVerification(deps: Deps, userId: string, sessionId: string | null = null): Promise<void> {
  requireAppUrl(deps.config);
  const made = await mailVerification(deps, eq(users.id, userId), sessionId);
  if (made) sendAfterAnswer(deps, made.mail, { user_id: made.userId, purpose: "verify_email" });
}

/**
 * Mails a verification link to an address, asked without signing in (an account that cannot sign in
 * before its address is verified). Like a reset: the same answer, work and time for every address,
 * the lookup and the mail after the answer.
 */
export async function requestEmailVerificationByAddress(deps: Deps, email: string): Promise<void> {
  requireAppUrl(deps.config);
  await afterAnswer(deps, "verify_by_address", async () => {
    const made = await mailVerification(deps, eq(users.email, email.toLowerCase()), null);
    if (made) await sendMail(deps, made.mail, { user_id: made.userId, purpose: "verify_email" });
  });
}

/** Uses a verification link: the address is verified (if it is still the account's), and its other verification links end. */
export async function verifyEmail(deps: Deps, token: string): Promise<void> {
  const { db } = deps;
  const now = new Date();
  const link = await openLink(db, token, "verify_email", now);
  // The use and its effect in one batch: a failure leaves the link usable.
  const [used, verified] = await db.batch([
    consumeAccountToken(db, link.tokenHash, "verify_email", now, link.usedBy),
    markEmailVerified(db, link.userId, link.email, now, link.consumed),
    endLinks(db, link.userId, ["verify_email"], now, link.consumed),
  ]);
  if (!used[0] || !verified[0]) throw invalidLink();
  await audit(deps, "email_verified", { user_id: link.userId });
}

/** The user behind a valid access token; one deleted since is as good as an invalid token. */
export async function userOf(deps: Deps, claims: AccessClaims): Promise<User> {
  const user = await findUserById(deps.db, claims.sub);
  if (!user) throw new ApiError("invalid_token", "The user behind this token no longer exists");
  return user;
}

/**
 * After the step-up (auth/ways-in.ts change_email): mails a confirmation link to the new address and
 * a notice to the old one, with a "this was not me" link that undoes the change; nothing changes
 * until the new address's link is used. An account without an address gets one this way too.
 */
export async function requestEmailChange(deps: Deps, claims: AccessClaims, newEmail: string, check: StepUpInput): Promise<void> {
  const { db } = deps;
  requireAppUrl(deps.config);
  const email = newEmail.toLowerCase();
  const now = new Date();
  await deps.limitMail?.(`user:${claims.sub}`);
  const started = await beginStepUp(deps, claims, now);
  const { user } = started;
  if (email === user.email) {
    await proveStepUp(deps, claims, "change_email", started, check, now); // no free guesses by asking for your own address
    throw new ApiError("validation_failed", undefined, { new_email: "is already your address" });
  }
  const proof = await proveStepUp(deps, claims, "change_email", started, check, now);
  // Whether an address is taken is told only to a signed-in owner who passed the step-up.
  if (await emailTaken(db, email)) throw new ApiError("email_taken");
  // A change a TOTP code authorized says so: the new address then ranks with that TOTP (db/users.ts changeEmail).
  const endorsed = proof && user.totpEnabledAt ? `totp:${user.totpEnabledAt.getTime()}` : null;
  const link = await newLink("change_email", now, { email, sessionId: claims.sid, way: endorsed });
  const stored = linkStored(db, link.row.tokenHash);
  const notMe = await notMeLink(db, user.id, `email:${email}`, claims.sid, now, stored);
  // The new link first (within the recipient's limit, and only while this session is live), then,
  // only if it was stored, the end of the older one: a refused request leaves the pending change be.
  const [inserted] = await db.batch([
    insertLink(db, eq(users.id, user.id), link.row, LIMITS.change_email, sessionLive(db, claims.sid, now)),
    endLinksOf(db, eq(users.id, user.id), "change_email", now, { except: link.row.tokenHash, onlyIf: stored }),
    notMe.statement,
  ]);
  if (!inserted[0] && !(await isSessionLive(db, claims.sid, now))) throw new ApiError("invalid_token", "This session has ended");
  // Links already live to that address from other accounts: nothing is mailed to it for now.
  if (!inserted[0]) throw new ApiError("rate_limited", "Too many pending links to that address; try again later", undefined, { "Retry-After": "3600" });
  // No text of the requester's choosing (not even the username) in a mail to an address not yet proved.
  const confirm = compose(email, "Confirm your new email address", ["Someone asked to use this address for their account. If it was you, open the link below within 24 hours. If not, ignore this mail."], {
    url: appLink(deps.config, "confirm-email", link.token),
    label: "Use this address",
  });
  sendAfterAnswer(deps, confirm, { user_id: user.id, purpose: "change_email" });
  securityNotice(deps, user, "Someone signed in to your account asked to move it to another email address", notMe.token);
  await audit(deps, "email_change_requested", { user_id: user.id, session_id: claims.sid });
}

/** Moves the account to the address a change link was sent to, if that address is still free. */
export async function confirmEmailChange(deps: Deps, token: string): Promise<void> {
  const { db } = deps;
  const now = new Date();
  const link = await openLink(db, token, "change_email", now);
  let used;
  try {
    // One batch: the use, the new address, and the end of links sent to the old one. If the address
    // was taken meanwhile the unique index fails the whole batch, and the link stays usable.
    [used] = await db.batch([
      consumeAccountToken(db, link.tokenHash, "change_email", now, link.usedBy),
      changeEmail(db, link.userId, link.email, now, link.consumed, link.sessionId, link.way?.startsWith("totp:") ? Number(link.way.slice(5)) : null),
      endLinks(db, link.userId, ["reset_password", "verify_email"], now, link.consumed),
    ]);
  } catch (err) {
    if (uniqueViolation(err)?.includes("email")) throw new ApiError("email_taken", "That address was taken in the meantime");
    throw err;
  }
  if (!used[0]) throw invalidLink(); // another request used it first
  await audit(deps, "email_changed", { user_id: link.userId });
}

/**
 * Deletes the account (sessions and links go with it, by cascade) after the step-up, unless it is the
 * last active admin, and revokes every access token of the user for good: ids are never reused, so
 * the KV entry names an epoch no token can reach, for as long as any token could live. Repeatable: a
 * retry after a failed KV write (the user is gone, the token still passes) writes it again.
 */
export async function deleteAccount(deps: Deps, claims: AccessClaims, check: StepUpInput): Promise<void> {
  const now = new Date();
  if (await findUserById(deps.db, claims.sub)) {
    const { user } = await stepUp(deps, claims, "delete_account", check);
    // Only while this session is live (a reset that ended it meanwhile wins), and never the last admin.
    const [deleted] = await deleteUser(deps.db, user.id, sessionLive(deps.db, claims.sid, now));
    if (!deleted) {
      if (!(await isSessionLive(deps.db, claims.sid, now))) throw new ApiError("invalid_token", "This session has ended");
      if (await findUserById(deps.db, user.id)) throw new ApiError("last_admin", "You are the last active admin: make another account an admin first");
    } else {
      // Without personal data: no address, no name, no IP.
      await audit({ ...deps, ip: undefined }, "account_deleted", { user_id: user.id });
    }
  }
  await revokeEpoch(deps.kv, claims.sub, { epoch: Number.MAX_SAFE_INTEGER, kept: null, until: new Date(now.getTime() + LONGEST_ACCESS_TOKEN_MS) });
}

// ACCESS_TOKEN_TTL's upper bound (config.ts): no token outlives this.
const LONGEST_ACCESS_TOKEN_MS = 86_400 * 1000;

/**
 * An admin changes a user's roles or disables them: every session of the user ends at once. The
 * statement itself refuses when the acting admin is no longer an active admin, or when the change
 * would leave no active admin (two admins disabling each other at once: one of them wins).
 */
export async function updateUserByAdmin(deps: Deps, admin: AccessClaims, userId: string, change: { roles?: string[]; disabled?: boolean }): Promise<User> {
  const { db } = deps;
  if (userId === admin.sub) {
    if (change.disabled) throw new ApiError("validation_failed", undefined, { disabled: "you cannot disable your own account" });
    if (change.roles && !change.roles.includes("admin")) throw new ApiError("validation_failed", undefined, { roles: "you cannot remove your own admin role" });
  }
  const now = new Date();
  const changed = updatedAt(db, userId, now);
  const [[updated], , , [state]] = await db.batch([
    updateByAdmin(db, userId, admin.sub, change, now),
    revokeUserSessions(db, userId, now, undefined, changed),
    endLinks(db, userId, ["reset_password", "change_email", "verify_email"], now, changed),
    epochState(db, userId),
  ]);
  if (!updated) {
    const why = await adminRefusal(db, userId, admin.sub);
    await audit(deps, "admin_refused", { user_id: userId, by: admin.sub, reason: why });
    if (why === "not_found") throw new ApiError("not_found", "No such user");
    if (why === "forbidden") throw new ApiError("forbidden", "Your admin role or account is no longer active");
    throw new ApiError("last_admin");
  }
  // Audited before KV: a 503 below still leaves the record of what was done and by whom.
  await audit(deps, "admin_user_updated", { user_id: userId, by: admin.sub, roles: change.roles?.join(","), disabled: change.disabled });
  if (state) await publishEpoch(deps, userId, state, now); // a failure is a 503: the admin repeats the change
  return updated;
}
