import type { SQL } from "drizzle-orm";
import { audit } from "../../audit";
import { endLinks } from "../../db/account-tokens";
import { batch } from "../../db/batch";
import { uniqueViolation } from "../../db/client";
import { endUserChallenges, usable as proofUsable, spendProof } from "../../db/mfa";
import { deletePasskey } from "../../db/passkeys";
import { revokeUserSessions } from "../../db/sessions";
import { accountAsChecked, accountWithAddress, endSessionEpoch, epochState, restoreEmail } from "../../db/users";
import { afterAnswer, type Deps } from "../../deps";
import { appLink, compose, sendMail } from "../../mail";
import { publishEpoch, retryAfterAnswer } from "../core/epochs";
import { checkNewPassword, type PasswordVerdict } from "../core/password-policy";
import { hashPassword, passwordOptions } from "../core/passwords";
import type { SecondFactor } from "../core/second-factor";
import { proveByLink } from "../core/step-up";
import { resetRemovesTotp, usernameOf } from "../core/ways-in";
import { type MailJob, queueMail, runLinkJob } from "../mail/jobs";
import { invalidLink, openLink, requireAppUrl } from "../mail/links";
import { announceHold, holdStatement, reclaimStatements } from "../mail/recovery-holds";

type OpenedLink = Awaited<ReturnType<typeof openLink>>;

/**
 * Recovery that reclaims: what the mailbox's owner can do with a mailed link. A password reset hands
 * the account back to them (every session and pending challenge ends, the passkeys go, and so does
 * anything set up before the address was proved); a "this was not me" link takes back one way in
 * that a notice announced, and ends every session. While TOTP is on, neither lowers what the account
 * requires at once (auth/mail/recovery-holds.ts). Knows nothing of HTTP.
 */

/**
 * Asks for a reset link by address: the request only queues the job (auth/mail/jobs.ts), the same
 * work, answer and time for every address, known or not. The lookup and the mail are the queue's
 * (mailResetLink).
 */
export async function forgotPassword(deps: Deps, email: string): Promise<void> {
  requireAppUrl(deps.config);
  await queueMail(deps, "reset_password", email);
}

/**
 * The queued job of a reset asked by address: a reset link when the address has an account (within
 * LIMITS, so a stranger cannot end a link the owner holds, and the address's mail budget).
 */
export async function mailResetLink(deps: Deps, job: MailJob): Promise<void> {
  const lines = [
    "Someone asked to reset the password of your account. If it was you, open the link below within 30 minutes. If not, ignore this mail: nothing changes.",
    "A reset signs out every session and removes the account's passkeys (you can add them again).",
  ];
  await runLinkJob(deps, job, accountWithAddress(job.email), (to, token) =>
    compose(to, "Reset your password", lines, { url: appLink(deps.config, "reset-password", token), label: "Choose a new password" }),
  );
}

/** What a reset did: removed at once, or held until `heldUntil` (auth/mail/recovery-holds.ts). */
export interface ResetDone extends PasswordVerdict {
  passkeysRemoved: number;
  totpRemoved: boolean;
  identitiesRemoved: number;
  heldUntil?: Date;
}

/**
 * Sets a new password from a reset link, and with it hands the account to the mailbox's owner. One
 * batch, every write conditional on this request using the link (and on the account being as it
 * was checked): the new password; the address verified (the link proved the mailbox); every
 * session, pending challenge and other link ended; every passkey removed, and every social identity
 * except those whose provider vouches for this very address. TOTP turned on after the address was
 * proved stays, and the reset needs a code (auth/core/ways-in.ts). TOTP set up before: a mailbox alone
 * never removes it at once, so the reset is held (auth/mail/recovery-holds.ts): every session ends now,
 * and the rest happens after RECOVERY_DELAY unless a sign-in with a second factor cancels it.
 */
export async function completePasswordReset(deps: Deps, token: string, newPassword: string, offered: SecondFactor = {}): Promise<ResetDone> {
  const { db, config } = deps;
  const now = new Date();
  const link = await openLink(db, token, "reset_password", now);
  const { user } = link;
  // The step-up reset_password: the link, and a code where the table asks for one (auth/core/step-up.ts).
  // The password policy before the link or a code is spent: a refused password leaves both usable.
  const verdict = await checkNewPassword(config, newPassword, { username: usernameOf(user), email: link.email }, deps.requestId);
  const { factor: proof } = await proveByLink(deps, "reset_password", link, offered, now);
  const passwordHash = await hashPassword(newPassword, passwordOptions(config));
  if (resetRemovesTotp(user)) return { ...(await holdReset(deps, link, passwordHash, now)), ...verdict };
  const { consumed } = link;
  // The link is used only if the account is as checked and the code (if any) is still unspent (a
  // code used meanwhile elsewhere fails the whole reset); every later write depends on that use.
  const done = await batch(db, {
    used: link.consume(accountAsChecked(db, user), proof ? proofUsable(db, user.id, proof) : undefined),
    ...reclaimStatements(deps, user.id, passwordHash, now, consumed, { removeTotp: false, mailbox: link.email }),
    proofSpent: proof ? spendProof(db, user.id, proof, now, consumed) : undefined,
  });
  if (!done.used[0]) throw invalidLink(); // another request used it, the account changed, or the code was used meanwhile
  const removed = { passkeysRemoved: done.passkeysRemoved.length, totpRemoved: false, identitiesRemoved: done.identitiesRemoved.length };
  await audit(deps, "password_reset", {
    user_id: user.id,
    passkeys_removed: removed.passkeysRemoved,
    identities_removed: removed.identitiesRemoved,
    totp_removed: false,
    with_code: proof !== null,
  });
  const what = [
    removed.passkeysRemoved ? `${removed.passkeysRemoved} passkey(s)` : "",
    removed.identitiesRemoved ? `${removed.identitiesRemoved} linked sign-in provider(s) that do not vouch for this address` : "",
  ].filter(Boolean);
  const lines = [
    "The password of your account was reset with a link mailed to this address, and every session was signed out.",
    ...(what.length ? [`Removed: ${what.join(" and ")}. You can add them again once signed in.`] : []),
  ];
  await afterAnswer(deps, "reset_notice", () =>
    sendMail(deps, compose(link.email, "Your password was reset", lines), { user_id: user.id, purpose: "security_notice" }).then(() => undefined),
  );
  await mirrorEpoch(deps, user.id, done.epoch[0], now);
  return { ...removed, ...verdict };
}

/**
 * A reset that would remove TOTP, held: the link is used and every session, challenge and other
 * link ends now; the new password, and what a reset removes, wait for RECOVERY_DELAY.
 */
async function holdReset(deps: Deps, link: OpenedLink, passwordHash: string, now: Date): Promise<ResetDone> {
  const { db } = deps;
  const { user, consumed } = link;
  const totpEnabledAt = user.totpEnabledAt ?? now; // resetRemovesTotp: TOTP is on
  const done = await batch(db, {
    used: link.consume(accountAsChecked(db, user)),
    held: holdStatement(deps, { userId: user.id, kind: "reset", totpEnabledAt, passwordHash, mailbox: link.email, now }, consumed),
    ...freeze(deps, user.id, now, consumed),
  });
  const held = done.held[0];
  if (!done.used[0] || !held) throw invalidLink();
  await mirrorEpoch(deps, user.id, done.epoch[0], now);
  await announceHold(deps, user.id, held.kind, held.dueAt);
  return { passkeysRemoved: 0, totpRemoved: false, identitiesRemoved: 0, heldUntil: held.dueAt };
}

/** Stops everything at once: every session, pending challenge and pending change or reset, with a new epoch for KV. */
const freeze = (deps: Deps, userId: string, now: Date, onlyIf: SQL) => ({
  epochEnded: endSessionEpoch(deps.db, userId, onlyIf),
  sessionsEnded: revokeUserSessions(deps.db, userId, now, undefined, onlyIf),
  challengesEnded: endUserChallenges(deps.db, userId, now, onlyIf),
  linksEnded: endLinks(deps.db, userId, ["change_email", "reset_password", "verify_email"], now, onlyIf),
  epoch: epochState(deps.db, userId),
});

/** KV learns of the ended sessions; the link is used up, so a failed write is retried after the answer. */
async function mirrorEpoch(deps: Deps, userId: string, state: Parameters<typeof publishEpoch>[2] | undefined, now: Date) {
  if (!state) return;
  try {
    await publishEpoch(deps, userId, state, now);
  } catch {
    retryAfterAnswer(deps, () => publishEpoch(deps, userId, state, now));
  }
}

/** The way in a "this was not me" link names ("passkey:<id>", "totp:<ms>", "email:<address>"). */
function wayOf(way: string | null) {
  const at = (way ?? "").indexOf(":");
  return { kind: (way ?? "").slice(0, at), value: (way ?? "").slice(at + 1) };
}

/**
 * Uses a "this was not me" link: ends every session, pending challenge and pending address change
 * at once, and takes back the way in its notice announced, if it is still there: a passkey goes; the
 * former address comes back, ranked with TOTP while that is on (never above it); a TOTP setup is
 * held for removal (auth/mail/recovery-holds.ts), since a mailbox alone never removes TOTP at once.
 * Repeatable in effect: the link is used up, and the KV write is retried after the answer if it fails.
 */
export async function revokeWayIn(deps: Deps, token: string): Promise<{ removed: boolean; kind: string; heldUntil?: Date }> {
  const { db } = deps;
  const now = new Date();
  const link = await openLink(db, token, "revoke_way_in", now);
  const { kind, value } = wayOf(link.way);
  const { userId, consumed } = link;
  const removal = (restore: boolean) =>
    kind === "passkey"
      ? { removed: deletePasskey(db, value, userId, consumed) }
      : kind === "totp"
        ? { held: holdStatement(deps, { userId, kind: "not_me", totpEnabledAt: new Date(Number(value)), now }, consumed) }
        : kind === "email" && restore
          ? { removed: restoreEmail(db, userId, value, link.email, now, consumed) }
          : {};
  const run = (restore: boolean) => batch(db, { used: link.consume(), ...freeze(deps, userId, now, consumed), ...removal(restore) });
  const results = await run(true).catch((err) => {
    // The former address was taken by another account meanwhile: everything else still happens.
    if (!uniqueViolation(err)) throw err;
    return run(false);
  });
  if (!results.used[0]) throw invalidLink();
  const held = "held" in results ? results.held?.[0] : undefined;
  const removed = "removed" in results && (results.removed?.length ?? 0) > 0;
  await audit(deps, "way_in_revoked", { user_id: userId, way: kind, removed, held: held !== undefined });
  await mirrorEpoch(deps, userId, results.epoch[0], now);
  if (held) await announceHold(deps, userId, held.kind, held.dueAt);
  if (kind === "email" && removed) await tellDisplaced(deps, userId, value);
  return { removed, kind, heldUntil: held?.dueAt };
}

/**
 * The address an undone change moved away from hears of it: it is the one the owner proved last,
 * and from now on every notice goes to the restored one.
 */
async function tellDisplaced(deps: Deps, userId: string, displaced: string) {
  const lines = [
    'The address of your account was changed back from this one to the address it had before, with the "this was not me" link mailed there, and every session was signed out.',
    "If that was not you: sign in (with your second factor if it is on), change the address again and change your password. While two-step sign-in is on, the former address cannot reset the password without a code, and any sign-in with a second factor cancels what it asks to remove.",
  ];
  await afterAnswer(deps, "displaced_notice", async () => {
    await sendMail(deps, compose(displaced, "The address of your account was changed back", lines), { user_id: userId, purpose: "security_notice" });
  });
}
