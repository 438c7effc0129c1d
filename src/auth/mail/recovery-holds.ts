import type { SQL } from "drizzle-orm";
import { audit } from "../../audit";
import type { Config } from "../../config";
import { ALL_PURPOSES, endLinks } from "../../db/account-tokens";
import { revokeUserApiKeys } from "../../db/api-keys";
import { batch } from "../../db/batch";
import { deleteIdentitiesOnReset } from "../../db/identities";
import { endUserChallenges, removeTotpEnabledAt } from "../../db/mfa";
import { deleteUserPasskeys } from "../../db/passkeys";
import { channelsOf, claimedBy, claimHold, dropDueHold, dueHolds, type Hold, type HoldKind, holdRecovery, type NewHold } from "../../db/recovery-holds";
import { revokeUserSessions } from "../../db/sessions";
import { epochState, resetPassword } from "../../db/users";
import { afterAnswer, type Deps } from "../../deps";
import { log } from "../../log";
import { compose, sendMail } from "../../mail";
import { publishEpoch } from "../core/epochs";

/**
 * What a mailbox alone may do to an account with TOTP on (docs/security.md, "A mailbox against a
 * second factor"): stop everything at once (every session, challenge and pending change ends), but
 * lower what the account requires (remove TOTP; a reset that would remove it) only after
 * RECOVERY_DELAY, announced to every address the account can be reached at. A sign-in with a second
 * factor in the meantime cancels it (auth/core/sign-in.ts openSession), so the owner who holds the factor
 * keeps the account by using it. The cron applies what is due. Knows nothing of HTTP.
 */

/** The statements that hand the account to the mailbox a reset link went to (auth/mailbox/reclaim.ts), only if `onlyIf` holds. */
export function reclaimStatements(deps: Deps, userId: string, passwordHash: string, now: Date, onlyIf: SQL, o: { removeTotp: boolean; mailbox: string }) {
  const { db } = deps;
  return {
    reset: resetPassword(db, userId, passwordHash, now, onlyIf, o),
    passkeysRemoved: deleteUserPasskeys(db, userId, onlyIf),
    identitiesRemoved: deleteIdentitiesOnReset(db, userId, o.mailbox, onlyIf),
    challengesEnded: endUserChallenges(db, userId, now, onlyIf),
    sessionsEnded: revokeUserSessions(db, userId, now, undefined, onlyIf),
    keysRevoked: revokeUserApiKeys(db, userId, now, onlyIf), // the account's own, and the organization keys it created
    linksEnded: endLinks(db, userId, ALL_PURPOSES, now, onlyIf),
    epoch: epochState(db, userId),
  };
}

export const holdDueAt = (config: Config, now: Date) => new Date(now.getTime() + config.RECOVERY_DELAY * 1000);

/** The hold as a statement for the batch that uses the link (written only if `onlyIf` holds there). */
export const holdStatement = (deps: Deps, h: Omit<NewHold, "dueAt">, onlyIf: SQL) =>
  holdRecovery(deps.db, { ...h, dueAt: holdDueAt(deps.config, h.now) }, onlyIf);

const when = (d: Date) => d.toUTCString();
const what = (kind: HoldKind) =>
  kind === "reset" ? "the password reset (and, with it, the removal of two-step sign-in and passkeys)" : "the removal of two-step sign-in";

/** Mails `lines` to every address the account can be reached at, after the answer. */
function tellEveryChannel(deps: Deps, userId: string, subject: string, lines: string[]) {
  return afterAnswer(deps, "recovery_notice", async () => {
    for (const to of await channelsOf(deps.db, userId)) await sendMail(deps, compose(to, subject, lines), { user_id: userId, purpose: "security_notice" });
  });
}

/** A hold was placed (or a later request joined it): said to every address the account has. */
export async function announceHold(deps: Deps, userId: string, kind: HoldKind, dueAt: Date) {
  await audit(deps, "recovery_held", { user_id: userId, kind, due_at: dueAt.toISOString() });
  const why =
    kind === "reset"
      ? "A password reset was asked for with a link mailed to this account's address. Two-step sign-in on this account was set up before that address was confirmed, so a mailbox alone cannot remove it at once."
      : 'The "this was not me" link in the notice about two-step sign-in was used.';
  await tellEveryChannel(deps, userId, "Two-step sign-in will be removed from your account", [
    why,
    `Every session was signed out. On ${when(dueAt)}, ${what(kind)} takes effect.`,
    "If you asked for this, nothing more is needed: after that time, sign in (or reset your password by mail).",
    "If you did not, sign in with your authenticator app, a recovery code or a passkey before then: that cancels it. Then change your password.",
  ]);
}

/** A sign-in with a second factor cancelled a hold (auth/core/sign-in.ts): recorded and said to every address. */
export async function announceCancel(deps: Deps, userId: string, sessionId: string, hold: { kind: HoldKind; dueAt: Date }) {
  await audit(deps, "recovery_cancelled", { user_id: userId, session_id: sessionId, kind: hold.kind });
  await tellEveryChannel(deps, userId, "A pending change to your account was cancelled", [
    `A sign-in with a second factor cancelled ${what(hold.kind)}, which was due on ${when(hold.dueAt)}.`,
    "If that sign-in was not you, change your password now: whoever signed in knows it and holds a second factor.",
  ]);
}

/**
 * The cron: applies holds whose wait is over. Each in one batch, only while it is still meant (the
 * TOTP it names is on; a held reset's address is still the account's) and unchanged since it was
 * read: TOTP goes and a held reset hands the account to the mailbox as a reset does. A moot hold is
 * dropped. One hold's failure after its batch (KV, mail) does not stop the others. Returns how many applied.
 */
export async function applyDueHolds(deps: Deps, now: Date, limit = 100): Promise<number> {
  let applied = 0;
  for (const hold of await dueHolds(deps.db, now, limit)) {
    if (!(await applyHold(deps, hold, now))) continue;
    applied++;
    try {
      await tellEveryChannel(deps, hold.userId, "Two-step sign-in was removed from your account", [
        `As announced on ${when(hold.requestedAt)}, ${what(hold.kind)} took effect now.`,
        hold.kind === "reset" ? "Sign in with the new password." : "Sign in with your password, or reset it by mail.",
      ]);
    } catch (err) {
      log("recovery_notice_failed", { user_id: hold.userId, error: (err as Error).name }, "error");
    }
  }
  return applied;
}

/** One hold's batch, its audit row and KV; true when this run applied it. */
async function applyHold(deps: Deps, hold: Hold, now: Date): Promise<boolean> {
  const { db } = deps;
  const by = crypto.randomUUID();
  const claimed = claimedBy(db, hold.userId, by);
  const reset = hold.passwordHash
    ? reclaimStatements(deps, hold.userId, hold.passwordHash, now, claimed, { removeTotp: true, mailbox: hold.mailbox ?? "" })
    : { totpRemoved: removeTotpEnabledAt(db, hold.userId, hold.totpEnabledAt, now, claimed) };
  const done = await batch(db, { claim: claimHold(db, hold, now, by), ...reset, dropped: dropDueHold(db, hold.userId, now, by) });
  if (!done.claim[0]) return false;
  await audit(deps, "recovery_applied", { user_id: hold.userId, kind: hold.kind });
  const state = "epoch" in done ? done.epoch[0] : undefined;
  try {
    if (state) await publishEpoch(deps, hold.userId, state, now);
  } catch (err) {
    // D1 ended the sessions already (no refresh); their last access tokens live out their minutes.
    log("revocation_incomplete", { user_id: hold.userId, error: (err as Error).name }, "error");
  }
  return true;
}
