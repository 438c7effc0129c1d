import type { Deps } from "../../deps";
import { log } from "../../log";
import { appLink, compose, sendAfterAnswer } from "../../mail";
import { spendMailBudget } from "./budget";

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
