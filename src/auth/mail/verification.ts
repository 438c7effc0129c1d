import type { SQL } from "drizzle-orm";
import { audit } from "../../audit";
import type { Config } from "../../config";
import { endLinks } from "../../db/account-tokens";
import { batch } from "../../db/batch";
import type { User } from "../../db/schema";
import { accountWithAddress, accountWithId, findUserById, markEmailVerified, withUnverifiedAddress } from "../../db/users";
import type { Deps } from "../../deps";
import { appLink, compose, sendAfterAnswer } from "../../mail";
import { Refusal } from "../core/errors";
import { auditLock, failPasswordCheck, passPasswordCheck, startPasswordCheck } from "../core/lockout";
import { passwordOptions, verifyPassword } from "../core/passwords";
import type { AccessClaims } from "../core/tokens";
import { hasPassword } from "../core/ways-in";
import { issueWithinBudget, mailCount } from "./budget";
import { type MailJob, queueMail, runLinkJob } from "./jobs";
import { invalidLink, LIFETIME, LIMITS, newLink, openLink, requireAppUrl } from "./links";

/**
 * Proving an address: the verification link (mailed after sign-up, on a refused sign-in, or on
 * request), and the proof that whoever follows a link that proves an address holds the account.
 * Every way in may mail it; knows nothing of HTTP.
 */

/** The verification mail for `to`, carrying `token`. */
function verificationMail(config: Config, to: string, token: string) {
  const lines = [
    `Confirm that this is your address by opening the link below, where you are signed in or with your password. It is valid for ${LIFETIME.verify_email / 3_600_000} hours.`,
    "If you did not make an account with this address, do not confirm it. To take the address back, reset that account's password by mail: that hands the account to you and ends everything its creator set up.",
    // The cron's rule (docs/storage.md): a verify-first account that never proves its address goes.
    ...(config.REQUIRE_VERIFIED_EMAIL === "on"
      ? [
          `An account whose address is not confirmed within ${config.UNVERIFIED_ACCOUNT_DAYS} days of sign-up may be removed; the address can then sign up again.`,
        ]
      : []),
  ];
  return compose(to, "Confirm your email address", lines, { url: appLink(config, "verify-email", token), label: "Confirm my address" });
}

/**
 * Mails a verification link (within LIMITS and the address's mail budget) to `address`, if it is
 * still the unverified address of the account `who` selects.
 */
async function mailVerification(deps: Deps, who: SQL, address: string, sessionId: string | null) {
  const now = new Date();
  const { token, row } = await newLink("verify_email", now, { sessionId });
  const count = await mailCount(deps.config, address, "verify_email", now);
  const issued = await issueWithinBudget(deps, withUnverifiedAddress(who, address), row, LIMITS.verify_email, count);
  if (!issued) return undefined; // no unverified address, three links live already, or the budget is spent
  return { mail: verificationMail(deps.config, issued.email, token), userId: issued.userId };
}

/**
 * Mails a verification link for the account's own address: after registering, when a sign-in is
 * refused for an unverified address, or on request by a signed-in session (requestOwnVerification).
 */
export async function requestEmailVerification(deps: Deps, user: { id: string; email: string | null }, sessionId: string | null = null): Promise<void> {
  requireAppUrl(deps.config);
  if (!user.email) return;
  const made = await mailVerification(deps, accountWithId(user.id), user.email, sessionId);
  if (made) sendAfterAnswer(deps, made.mail, { user_id: made.userId, purpose: "verify_email" });
}

/** POST /email/verify/request with a Bearer token: the account's address is read first (its budget is the address's). */
export async function requestOwnVerification(deps: Deps, claims: AccessClaims): Promise<void> {
  requireAppUrl(deps.config);
  const user = await findUserById(deps.db, claims.sub);
  if (user && !user.emailVerifiedAt) await requestEmailVerification(deps, user, claims.sid);
}

/**
 * Asks for a verification link by address, without signing in (an account that cannot sign in
 * before its address is verified). Like a reset: the request only queues the job, the same for every
 * address; the lookup and the mail are the queue's (mailVerificationJob).
 */
export async function requestEmailVerificationByAddress(deps: Deps, email: string): Promise<void> {
  requireAppUrl(deps.config);
  await queueMail(deps, "verify_email", email);
}

/** The queued job of a verification asked by address: a link if the address is an account's, unverified. */
export async function mailVerificationJob(deps: Deps, job: MailJob): Promise<void> {
  await runLinkJob(deps, job, withUnverifiedAddress(accountWithAddress(job.email), job.email), (to, token) => verificationMail(deps.config, to, token));
}

/** Who follows a link that proves an address for an account: signed in to it (its claims), or knowing its password. */
export interface AccountProof {
  claims?: AccessClaims;
  password?: string;
}

/**
 * A link that proves an address (verification, an address change) proves the mailbox, not who made
 * the account: a stranger whose address a squatter registered must not end up sharing that account.
 * So the one following it shows they hold the account: a Bearer token of it, or its password
 * (through the login lock: wrong ones count as failed logins). Returns the statements that record a
 * right password, for the batch that uses the link; throws account_proof_required without either.
 */
export async function proveHolder(deps: Deps, user: User, proof: AccountProof, now: Date) {
  if (proof.claims) {
    if (proof.claims.sub !== user.id) throw new Refusal("account_proof_required", "You are signed in to another account: sign in to the one this link is for");
    return {};
  }
  if (proof.password === undefined) throw new Refusal("account_proof_required");
  const { check } = await startPasswordCheck(deps, user.id, now);
  const ok = hasPassword(user) && (await verifyPassword(proof.password, user.passwordHash, passwordOptions(deps.config)));
  if (!ok) {
    const lock = await failPasswordCheck(deps, user.id, check, now, "login_failed", "wrong_password_at_link");
    await auditLock(deps, user.id, lock);
    throw new Refusal("invalid_credentials", "The password is wrong");
  }
  return passPasswordCheck(deps, user.id, check, now);
}

/** Uses a verification link, from the account's holder: the address is verified (if it is still the account's), and its other verification links end. */
export async function verifyEmail(deps: Deps, token: string, proof: AccountProof): Promise<void> {
  const { db } = deps;
  const now = new Date();
  const link = await openLink(db, token, "verify_email", now);
  const passed = await proveHolder(deps, link.user, proof, now);
  // The use and its effect in one batch: a failure leaves the link usable.
  const { used, verified } = await batch(db, {
    used: link.consume(),
    verified: markEmailVerified(db, link.userId, link.email, now, link.consumed),
    othersEnded: endLinks(db, link.userId, ["verify_email"], now, link.consumed),
    ...passed,
  });
  if (!used[0] || !verified[0]) throw invalidLink();
  await audit(deps, "email_verified", { user_id: link.userId });
}
