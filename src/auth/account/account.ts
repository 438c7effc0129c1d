import { audit } from "../../audit";
import { endLinks, endLinksOf, insertLink, linkStored } from "../../db/account-tokens";
import { deleteUser } from "../../db/admins";
import { batch } from "../../db/batch";
import { uniqueViolation } from "../../db/client";
import { countMail, mailsCounted, withinBudget } from "../../db/mail-sends";
import { isSoleOwner } from "../../db/memberships";
import { userWithPasskeyCount, userWithWaysIn } from "../../db/passkeys";
import { isSessionLive, sessionLive } from "../../db/sessions";
import { accountWithId, changeEmail, emailTaken, findUserById } from "../../db/users";
import type { Deps } from "../../deps";
import { appLink, compose, sendAfterAnswer } from "../../mail";
import { Refusal, sessionEnded, TooManyAttempts, userGone } from "../core/errors";
import { revokeEpoch } from "../core/revocations";
import { beginStepUp, proveStepUp, type StepUpAsk, type StepUpInput, stepUp } from "../core/step-up";
import type { AccessClaims } from "../core/tokens";
import { stepUpFor, waysIn } from "../core/ways-in";
import { mailCount, mailRefused } from "../mail/budget";
import { invalidLink, LIMITS, newLink, notMeLink, openLink, requireAppUrl } from "../mail/links";
import { securityNotice } from "../mail/notices";
import { type AccountProof, proveHolder } from "../mail/verification";

/**
 * The account as its owner manages it: the profile and the security view, the address
 * (verification, change), deletion. Knows nothing of HTTP. Resets and "this was not me" links are in
 * auth/mailbox/reclaim.ts, the links themselves in auth/mail/links.ts, an admin's changes in auth/account/admin.ts.
 */

/** GET /me: the user, and how many passkeys they have (one round trip). */
export async function profile(deps: Deps, claims: AccessClaims) {
  const found = await userWithPasskeyCount(deps.db, claims.sub);
  if (!found) throw userGone();
  return found;
}

/** GET /me/security: the ways in, and the step-up table as it applies to this account now (one round trip). */
export async function securityView(deps: Deps, claims: AccessClaims) {
  const found = await userWithWaysIn(deps.db, claims.sub);
  if (!found) throw userGone();
  return { waysIn: waysIn(found.user, found.passkeys, found.identities), stepUp: stepUpFor(found.user) };
}

/**
 * After the step-up (auth/core/ways-in.ts change_email): mails a confirmation link to the new address and
 * a notice to the old one, with a "this was not me" link that undoes the change; nothing changes
 * until the new address's link is used. An account without an address gets one this way too.
 */
export async function requestEmailChange(deps: Deps, ask: StepUpAsk<"change_email">, newEmail: string, check: StepUpInput): Promise<void> {
  const { db } = deps;
  const { claims } = ask;
  requireAppUrl(deps.config);
  const email = newEmail.toLowerCase();
  const now = new Date();
  await deps.limitMail?.(`user:${claims.sub}`);
  const started = await beginStepUp(deps, ask, now);
  if (email === started.user.email) {
    await proveStepUp(deps, started, check, now); // no free guesses by asking for your own address
    throw new Refusal("validation_failed", undefined, { new_email: "is already your address" });
  }
  const { user, factor: proof } = await proveStepUp(deps, started, check, now);
  // Whether an address is taken is told only to a signed-in owner who passed the step-up.
  if (await emailTaken(db, email)) throw new Refusal("email_taken");
  // A change a TOTP code authorized says so: the new address then ranks with that TOTP (db/users.ts changeEmail).
  const endorsed = proof && user.totpEnabledAt ? `totp:${user.totpEnabledAt.getTime()}` : null;
  const link = await newLink("change_email", now, { email, sessionId: claims.sid, way: endorsed });
  const stored = linkStored(db, link.row.tokenHash);
  const notMe = await notMeLink(db, user.id, `email:${email}`, claims.sid, now, stored);
  // The address is a stranger's until its link is used: the confirmation counts against its budget.
  const count = await mailCount(deps.config, email, "change_email", now);
  // The new link first (within the recipient's limit and budget, and only while this session is
  // live), then, only if it was stored, its count and the end of the older one: a refused request
  // leaves the pending change be.
  const { inserted, sent } = await batch(db, {
    inserted: insertLink(db, accountWithId(user.id), link.row, LIMITS.change_email, withinBudget(count, sessionLive(db, claims.sid, now))),
    counted: countMail(db, count, stored),
    sent: mailsCounted(db, count),
    olderEnded: endLinksOf(db, accountWithId(user.id), "change_email", now, { except: link.row.tokenHash, onlyIf: stored }),
    notMeLink: notMe.statement,
  });
  if (!inserted[0] && !(await isSessionLive(db, claims.sid, now))) throw sessionEnded();
  // The budget of that address is spent: nothing is mailed or changed, and the answer is the same
  // as for a request that went through (it must not tell the requester anything about the address).
  if (!inserted[0] && (sent[0]?.n ?? 0) >= count.perDay) {
    await mailRefused(deps, "change_email", user.id);
    return;
  }
  // Links already live to that address from other accounts: nothing is mailed to it for now.
  if (!inserted[0]) throw new TooManyAttempts(3600, "Too many pending links to that address; try again later");
  // No text of the requester's choosing (not even the username) in a mail to an address not yet proved.
  const confirm = compose(
    email,
    "Confirm your new email address",
    [
      "Someone asked to use this address for their account. If it was you, open the link below within 24 hours, where you are signed in to that account or with its password. If not, ignore this mail.",
    ],
    {
      url: appLink(deps.config, "confirm-email", link.token),
      label: "Use this address",
    },
  );
  sendAfterAnswer(deps, confirm, { user_id: user.id, purpose: "change_email" });
  securityNotice(deps, user, "Someone signed in to your account asked to move it to another email address", notMe.token);
  await audit(deps, "email_change_requested", { user_id: user.id, session_id: claims.sid });
}

/** Moves the account to the address a change link was sent to, if that address is still free; from the account's holder (proveHolder). */
export async function confirmEmailChange(deps: Deps, token: string, proof: AccountProof): Promise<void> {
  const { db } = deps;
  const now = new Date();
  const link = await openLink(db, token, "change_email", now);
  const passed = await proveHolder(deps, link.user, proof, now);
  // One batch: the use, the new address, and the end of links sent to the old one. If the address
  // was taken meanwhile the unique index fails the whole batch, and the link stays usable.
  const { used } = await batch(db, {
    used: link.consume(),
    changed: changeEmail(db, link.userId, link.email, now, link.consumed, link.sessionId, link.way?.startsWith("totp:") ? Number(link.way.slice(5)) : null),
    oldLinksEnded: endLinks(db, link.userId, ["reset_password", "verify_email"], now, link.consumed),
    ...passed,
  }).catch((err) => {
    if (uniqueViolation(err)?.includes("email")) throw new Refusal("email_taken", "That address was taken in the meantime");
    throw err;
  });
  if (!used[0]) throw invalidLink(); // another request used it first
  await audit(deps, "email_changed", { user_id: link.userId });
}

/**
 * Deletes the account (sessions and links go with it, by cascade) after the step-up, unless it is the
 * last active admin, and revokes every access token of the user for good: ids are never reused, so
 * the KV entry names an epoch no token can reach, for as long as any token could live. Repeatable: a
 * retry after a failed KV write (the user is gone, the token still passes) writes it again.
 */
export async function deleteAccount(deps: Deps, ask: StepUpAsk<"delete_account">, check: StepUpInput): Promise<void> {
  const now = new Date();
  const { claims } = ask;
  if (await findUserById(deps.db, claims.sub)) {
    const { user } = await stepUp(deps, ask, check);
    // Only while this session is live (a reset that ended it meanwhile wins), and never the last admin.
    const [deleted] = await deleteUser(deps.db, user.id, sessionLive(deps.db, claims.sid, now));
    if (!deleted) {
      if (!(await isSessionLive(deps.db, claims.sid, now))) throw sessionEnded();
      if (await isSoleOwner(deps.db, user.id)) {
        throw new Refusal("last_owner", "You are the only owner of an organization with other members: hand it over or delete it first");
      }
      if (await findUserById(deps.db, user.id)) throw new Refusal("last_admin", "You are the last active admin: make another account an admin first");
    } else {
      // Without personal data: no address, no name, no IP.
      await audit({ ...deps, ip: undefined }, "account_deleted", { user_id: user.id });
    }
  }
  await revokeEpoch(deps.kv, claims.sub, { epoch: Number.MAX_SAFE_INTEGER, kept: null, until: new Date(now.getTime() + LONGEST_ACCESS_TOKEN_MS) });
}

// ACCESS_TOKEN_TTL's upper bound (config.ts): no token outlives this.
const LONGEST_ACCESS_TOKEN_MS = 86_400 * 1000;
