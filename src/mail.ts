import { audit } from "./audit";
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
export type MailPurpose = "verify_email" | "reset_password" | "change_email" | "email_change_notice" | "security_notice" | "invitation" | "mail_sign_in";

/** The app's pages for each mailed link: APP_URL#<action>=<token>. */
export type LinkAction = "verify-email" | "reset-password" | "confirm-email" | "revoke-way-in" | "accept-invitation" | "mail-sign-in";

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
