import { audit } from "../../audit";
import { uniqueViolation } from "../../db/client";
import { addressIs, consumeMailLink, type MailSignIn, newestLiveFor, tryMailCode } from "../../db/mail-sign-ins";
import type { User } from "../../db/schema";
import { accountAsChecked, epochState, findUserById } from "../../db/users";
import type { Deps } from "../../deps";
import { sha256Base64Url } from "../../encoding";
import { decideSignIn, firstSession, type SignInResult } from "../core/decision";
import { publishEpoch, retryAfterAnswer } from "../core/epochs";
import { Refusal } from "../core/errors";
import { insertAccount, newUserRow } from "../core/new-account";
import { issue } from "../core/sign-in";
import { NO_PASSWORD, NO_USERNAME } from "../core/ways-in";
import { mailboxOf } from "../mail/budget";
import { reclaimStatements } from "../mail/recovery-holds";
import { codeHashOf } from "./messages";

/**
 * Using a mail sign-in message (docs/mail-sign-in.md): its link, posted by the app's page (a GET or
 * HEAD never reaches this: no route consumes on them), or its code, from any device. Either is one
 * conditional UPDATE ... RETURNING (db/mail-sign-ins.ts): of two requests exactly one wins. Then the
 * one sign-in decision (first factor "mail", amr ["email"]; TOTP on asks the second step), or the
 * sign-up the message was for. Knows nothing of HTTP.
 */

const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const invalidLink = () => new Refusal("invalid_link");
const invalidCode = () => new Refusal("invalid_mail_code");

/** POST /login/email/link: the link's token. */
export async function signInWithLink(deps: Deps, token: string): Promise<SignInResult> {
  const now = new Date();
  if (!TOKEN_FORMAT.test(token)) throw invalidLink();
  const row = await consumeMailLink(deps.db, await sha256Base64Url(token), now);
  if (!row) throw invalidLink();
  return complete(deps, row, now, "link");
}

/**
 * POST /login/email/code: the address and the code of its newest live message. Every try spends one
 * of that message's MAIL_CODE_ATTEMPTS, in the statement that compares it (the last one ends the code,
 * not the link); every failure is the same 401.
 * Guessing across messages is bounded by the address's mail budget (MAIL_RECIPIENT_DAILY messages a
 * day), the per-address limit at the edge and the per-client one on the route.
 */
export async function signInWithCode(deps: Deps, address: string, typed: string): Promise<SignInResult> {
  const { db, config } = deps;
  const now = new Date();
  const email = address.toLowerCase();
  await deps.limitAccount?.(`mail:${mailboxOf(email)}`);
  const code = typed.replace(/[\s-]/g, "");
  const row = await newestLiveFor(db, email, now, config.MAIL_CODE_ATTEMPTS);
  if (!row) {
    // The same work as a wrong code (a hash and the statement that tries it, matching nothing), so the
    // answer's timing does not tell an address with an account from one without.
    await tryMailCode(db, "none", await codeHashOf("none", code), now, config.MAIL_CODE_ATTEMPTS);
    throw await refusedCode(deps, null);
  }
  const tried = await tryMailCode(db, row.id, await codeHashOf(row.id, code), now, config.MAIL_CODE_ATTEMPTS);
  if (!tried?.usedAt) throw await refusedCode(deps, row.userId, Math.max(0, config.MAIL_CODE_ATTEMPTS - (tried?.attempts ?? config.MAIL_CODE_ATTEMPTS)));
  return complete(deps, tried, now, "code");
}

async function refusedCode(deps: Deps, userId: string | null, left?: number) {
  await audit(deps, "login_failed", { user_id: userId, reason: "wrong_mail_code", ...(left === undefined ? {} : { attempts_left: left }) });
  return invalidCode();
}

/** The message is used: the sign-in (or sign-up) it was for. */
async function complete(deps: Deps, row: MailSignIn, now: Date, via: "link" | "code"): Promise<SignInResult> {
  if (row.userId === null) return signUp(deps, row, now, via);
  const user = await findUserById(deps.db, row.userId);
  // The address moved to another account (or away) since the message went: it proves nothing here.
  if (!user || user.email !== row.email) throw via === "link" ? invalidLink() : invalidCode();
  return signIn(deps, user, row, now, via);
}

/**
 * A sign-in to the account the message went to. Its address was proved already: the decision as
 * for any first factor. Never proved (someone may have registered this address before its owner,
 * with their own password): proving the mailbox hands the account over, as a reset does
 * (auth/mailbox/reclaim.ts): the address is verified, the password, passkeys, identities that do not
 * vouch for this address, API keys, sessions, challenges and links end, in the batch that opens this
 * session. With TOTP on (set up before the address was proved) the mailbox alone removes nothing:
 * the second step is asked, and only who set TOTP up can answer it.
 */
async function signIn(deps: Deps, user: User, row: MailSignIn, now: Date, via: string): Promise<SignInResult> {
  const handOver = user.emailVerifiedAt === null && user.totpEnabledAt === null;
  const reclaim = handOver
    ? reclaimStatements(deps, user.id, NO_PASSWORD, now, accountAsChecked(deps.db, user), { removeTotp: false, mailbox: row.email })
    : undefined;
  // The address check comes first: `reset` verifies it, and every other statement is conditioned on the account as checked.
  const before = reclaim ? (({ reset, epoch, ...ended }) => ({ ...ended, reset, epoch }))(reclaim) : {};
  const result = await decideSignIn(deps, handOver ? { ...user, emailVerifiedAt: now } : user, { kind: "mail" }, now, {
    session: { before, condition: addressIs(row.email), detail: { via: `mail_${via}`, ...(handOver ? { handed_over: "true" } : {}) } },
    // The account changed between the message's use and the session: its address, or TOTP turned on.
    changed: via === "link" ? "invalid_link" : "invalid_mail_code",
  });
  if (handOver && "issued" in result) {
    await audit(deps, "password_reset", { user_id: user.id, by: "mail_sign_in" });
    const [state] = await epochState(deps.db, user.id);
    if (state) await publishEpoch(deps, user.id, state, now).catch(() => retryAfterAnswer(deps, () => publishEpoch(deps, user.id, state, now)));
  }
  return result;
}

/** A sign-up message: the account (no username, no password, its address proved now) and its first session, in one batch. */
async function signUp(deps: Deps, row: MailSignIn, now: Date, via: string): Promise<SignInResult> {
  const { config } = deps;
  if (config.REGISTRATION === "closed") throw new Refusal("registration_closed");
  const id = crypto.randomUUID();
  const first = await firstSession(deps, id, { kind: "mail" }, now, now);
  const user = newUserRow({
    id,
    username: NO_USERNAME,
    email: row.email,
    passwordHash: NO_PASSWORD,
    emailVerifiedAt: now,
    verifyBy: null,
    setBy: first?.row.id ?? null,
    now,
  });
  const registered = { user_id: id, session_id: first?.row.id ?? null, via: `mail_${via}` };
  try {
    await insertAccount(deps, user, first, registered, now);
  } catch (err) {
    // An account took the address after the message went (a password sign-up, say): never joined to it.
    if (uniqueViolation(err)?.includes("email")) throw new Refusal("email_taken", "An account took this address meanwhile: ask for a new sign-in mail");
    throw err;
  }
  if (!first) throw new Refusal("forbidden", "This account cannot sign in yet");
  return { user, issued: await issue(deps, { ...user, epoch: 0 }, first.row, now, first.refreshToken) };
}
