import type { Config } from "../../config";
import { batch } from "../../db/batch";
import { countMail, mailSentAt, mailsCounted, markMailSent, withinBudget } from "../../db/mail-sends";
import { accountForAddress, insertMailSignIn, mailSignInById, mailSignInNotStored, mailSignInStored, supersedeOlder } from "../../db/mail-sign-ins";
import type { Deps, MailJob } from "../../deps";
import { sha256Base64Url, toBase64Url } from "../../encoding";
import { log } from "../../log";
import { appLink, compose, deliver, type Mail } from "../../mail";
import { serverHmacKey } from "../core/hkdf";
import { mailCount, mailRefused } from "../mail/budget";
import { queueMail } from "../mail/jobs";
import { requireAppUrl } from "../mail/links";

/**
 * Sign-in by mail, its message (docs/mail-sign-in.md): one mail carrying a link to the app's page
 * (APP_URL#mail-sign-in=<token>, 256 bits) and a short code (8 digits), good once within
 * MAIL_SIGN_IN_TTL. The request only queues a job, the same for every address (auth/mail/jobs.ts):
 * whether an account has the address shows neither in the answer nor in its time. The queue's
 * consumer looks the address up and makes the message: a sign-in for an account (not disabled), a
 * sign-up where no account has it and REGISTRATION is open, else nothing. Knows nothing of HTTP.
 */

const CODE_DIGITS = 8; // 10^8 codes: about 26.6 bits (ASVS 6.5.4 asks for at least 20)

/** POST /login/email: the request's only work, whatever the address. */
export async function startMailSignIn(deps: Deps, email: string): Promise<void> {
  requireAppUrl(deps.config);
  await queueMail(deps, "mail_sign_in", email);
}

const encoder = new TextEncoder();
const messageKey = (config: Config) => serverHmacKey(config, "edge-auth-api mail sign-in v1");

/**
 * A job's message: its row id, link token and code, the same on every delivery of the job (so a
 * retry makes no second message) and made by nobody without the Worker's secret (the queue holds none of them).
 */
export async function messageOf(config: Config, key: string) {
  const part = async (what: string) => new Uint8Array(await crypto.subtle.sign("HMAC", await messageKey(config), encoder.encode(`${what}:${key}`)));
  const [id, token, digits] = await Promise.all([part("id"), part("link"), part("code")]);
  // 48 bits reduced to 8 digits: a bias below 10^-6.
  const n = digits.slice(0, 6).reduce((acc, b) => acc * 256 + b, 0);
  const code = String(n % 10 ** CODE_DIGITS).padStart(CODE_DIGITS, "0");
  return { id: toBase64Url(id.slice(0, 18)), token: toBase64Url(token), code };
}

/** The stored hash of a message's code: the code is short, so the row's id salts it. */
export const codeHashOf = (id: string, code: string) => sha256Base64Url(`${id}:${code}`);

/** What the message says, for a sign-in, a hand-over (an address nobody proved yet) or a sign-up. */
function messageMail(config: Config, to: string, kind: "sign_in" | "hand_over" | "sign_up", token: string, code: string): Mail {
  const minutes = Math.round(config.MAIL_SIGN_IN_TTL / 60);
  const what = kind === "sign_up" ? `create your ${config.APP_NAME} account` : `sign in to ${config.APP_NAME}`;
  const lines = [
    `Someone asked to ${what} with this address. If it was you, open the link below on this device, or enter this code where you asked: ${code}`,
    `The link and the code work once, for ${minutes} minutes, and only until a newer sign-in mail is asked for. If it was not you, ignore this mail: nothing happens.`,
    ...(kind === "hand_over"
      ? [
          "The account with this address never confirmed it. Signing in with this mail confirms it and hands the account to this mailbox: its password, passkeys and linked providers are removed and every session ends. If you made the account and know its password, sign in with that instead.",
        ]
      : []),
    "Never share this code: nobody from the service will ask for it.",
  ];
  // The code stays out of the subject: subjects show on lock screens and in mail logs.
  const subject = kind === "sign_up" ? `Create your ${config.APP_NAME} account` : `Sign in to ${config.APP_NAME}`;
  return compose(to, subject, lines, { url: appLink(config, "mail-sign-in", token), label: kind === "sign_up" ? "Create my account" : "Sign in" });
}

/**
 * The queued job: the lookup, the message's row (within the address's mail budget; older unused
 * messages to the address end in the same batch) and the mail, unless an earlier delivery sent it.
 */
export async function mailSignInJob(deps: Deps, job: MailJob): Promise<void> {
  const { db, config } = deps;
  requireAppUrl(config);
  const now = new Date();
  const email = job.email.toLowerCase();
  const account = await accountForAddress(db, email);
  if (account?.disabledAt || (!account && config.REGISTRATION === "closed")) return; // nothing to send: the answer was the same
  const { id, token, code } = await messageOf(config, job.key);
  const row = {
    id,
    email,
    userId: account?.id ?? null,
    tokenHash: await sha256Base64Url(token),
    codeHash: await codeHashOf(id, code),
    now,
    expiresAt: new Date(now.getTime() + config.MAIL_SIGN_IN_TTL * 1000),
  };
  const count = await mailCount(config, email, "mail_sign_in", now, job.key);
  const done = await batch(db, {
    inserted: insertMailSignIn(db, row, withinBudget(count, mailSignInNotStored(db, id))),
    superseded: supersedeOlder(db, email, id, now),
    counted: countMail(db, count, mailSignInStored(db, id)),
    sent: mailsCounted(db, count),
    stored: mailSignInById(db, id),
    mailed: mailSentAt(db, job.key),
  });
  const stored = done.stored[0];
  if (!stored) {
    // The budget, or the address moved between the lookup and the insert.
    if ((done.sent[0]?.n ?? 0) >= count.perDay) await mailRefused(deps, "mail_sign_in", account?.id ?? null);
    return;
  }
  if (done.mailed[0]?.sentAt) return; // mailed by an earlier delivery
  if (stored.usedAt || stored.expiresAt <= now) {
    log("mail_job_stale", { request_id: deps.requestId, kind: job.kind, user_id: stored.userId }, "warn");
    return;
  }
  const kind = !account ? "sign_up" : account.emailVerifiedAt || account.totpEnabledAt ? "sign_in" : "hand_over";
  await deliver(deps, messageMail(config, email, kind, token, code), { user_id: stored.userId ?? "", purpose: "mail_sign_in" });
  try {
    await markMailSent(db, job.key, new Date());
  } catch (err) {
    log("mail_sent_unrecorded", { request_id: deps.requestId, kind: job.kind, error: (err as Error).name }, "error");
  }
}
