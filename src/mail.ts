import { audit } from "./audit";
import { spendMailBudget } from "./auth/mail/budget";
import { type Config, ConfigError } from "./config";
import type { Deps } from "./deps";
import { log } from "./log";

/**
 * The only sender of mail: Cloudflare Email Service's `send_email` binding (EMAIL). `wrangler dev`
 * and the test pool print mail instead of sending it. Never logs a link, a token or an address.
 */

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** What a mail is for, for the log and the audit trail. */
export type MailPurpose = "verify_email" | "reset_password" | "change_email" | "email_change_notice" | "security_notice";

/** The app's pages for each mailed link: APP_URL#<action>=<token>. */
export type LinkAction = "verify-email" | "reset-password" | "confirm-email" | "revoke-way-in";

/** The app page that completes a flow; the token goes in the URL fragment, which no server or log sees. */
export function appLink(config: Config, action: LinkAction, token: string): string {
  return `${config.APP_URL}#${action}=${token}`;
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** A plain-text and a simple HTML body: a few lines, and the link as the one button. */
export function compose(to: string, subject: string, lines: string[], link?: { url: string; label: string }): Mail {
  const text = [...lines, ...(link ? ["", `${link.label}: ${link.url}`] : [])].join("\n");
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif">${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join("")}${
    link ? `<p><a href="${escapeHtml(link.url)}">${escapeHtml(link.label)}</a></p>` : ""
  }</body></html>`;
  return { to, subject, text, html };
}

/** Sends one mail, or throws (a queue's consumer retries it: src/mail-queue.ts). */
export async function deliver(deps: Deps, mail: Mail, about: { user_id: string; purpose: MailPurpose }): Promise<void> {
  if (!deps.mailer) throw new ConfigError(["EMAIL: the send_email binding is missing (wrangler.toml [[send_email]])"]);
  await deps.mailer.send({ from: deps.config.MAIL_FROM, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
  log("mail_sent", { request_id: deps.requestId, ...about });
}

/** Sends one mail. A failure is logged and audited, never thrown: callers must not reveal it. */
export async function sendMail(deps: Deps, mail: Mail, about: { user_id: string; purpose: MailPurpose }): Promise<boolean> {
  try {
    await deliver(deps, mail, about);
    return true;
  } catch (err) {
    if (err instanceof ConfigError) log("config_invalid", { request_id: deps.requestId, problems: err.problems }, "error");
    // The error's name only: a mail service's message may quote the recipient.
    await audit(deps, "mail_failed", { ...about, error: (err as Error).name });
    return false;
  }
}

/**
 * Sends after the answer (waitUntil), so neither its time nor its failure shows in the answer; with
 * `gate`, only if it says so (the recipient's mail budget). A failing gate sends nothing, logged.
 */
export function sendAfterAnswer(deps: Deps, mail: Mail, about: { user_id: string; purpose: MailPurpose }, gate?: () => Promise<boolean>): void {
  const task = (gate ? gate() : Promise.resolve(true))
    .then((go) => (go ? sendMail(deps, mail, about) : false))
    .catch((err: Error) => log("mail_budget_failed", { request_id: deps.requestId, ...about, error: err.name }, "error"));
  if (deps.defer) deps.defer(task);
}

/**
 * Tells the account's owner that its ways in changed, where it has an address. A new way in comes
 * with a single-use "this was not me" link (auth/mailbox/reclaim.ts) that ends every session and takes it back.
 */
export function securityNotice(deps: Deps, user: { id: string; email: string | null; emailVerifiedAt: Date | null }, change: string, notMe?: string): void {
  const to = user.email;
  if (!to) return;
  // Without APP_URL the link cannot be made: the notice still goes out, and the fault is logged as any other.
  if (notMe && !deps.config.APP_URL) log("config_invalid", { request_id: deps.requestId, problems: ["APP_URL: is required for mailed links"] }, "error");
  const link = notMe && deps.config.APP_URL ? { url: appLink(deps.config, "revoke-way-in", notMe), label: "This was not me" } : undefined;
  // While TOTP is on, a mailbox alone never removes it at once (auth/mail/recovery-holds.ts): the link
  // signs everyone out at once, and what it takes back waits RECOVERY_DELAY if it is two-step sign-in.
  const advice = link
    ? "If this was you, nothing more is needed. If not, open the link below: it signs out every session at once and takes this back (two-step sign-in after a waiting period that a sign-in with it cancels). Then reset your password: whoever did this knows it."
    : "If this was you, nothing more is needed. If not, reset your password now (it signs out every session).";
  // To an address its owner proved, a notice always goes: only the account can cause it, and a
  // stranger must not be able to silence it. To one nobody proved (a squatter may have typed it), it
  // is mail a stranger causes: it counts against that address's budget (auth/mail/budget.ts).
  const gate = user.emailVerifiedAt ? undefined : () => spendMailBudget(deps, to, "security_notice", user.id);
  const about = { user_id: user.id, purpose: "security_notice" as const };
  sendAfterAnswer(deps, compose(to, "A sign-in setting of your account changed", [`${change}.`, advice], link), about, gate);
}
