import type { SQL } from "drizzle-orm";
import { audit } from "../../audit";
import type { Config } from "../../config";
import { insertLink, type LinkLimits, linkByHash, linkNotStored, linkStored, type NewLink } from "../../db/account-tokens";
import { batch } from "../../db/batch";
import { type BudgetedPurpose, countMail, type MailCount, mailSentAt, mailsCounted, withinBudget } from "../../db/mail-sends";
import { accountIdOf } from "../../db/users";
import type { Deps } from "../../deps";
import { toBase64Url } from "../../encoding";
import { serverHmacKey } from "../core/hkdf";

/**
 * The per-recipient mail budget (docs/security.md, "mail turned against the owner"): every mail that
 * someone other than the address's proved owner can cause (a link to an address someone typed, a
 * notice to an address nobody proved) counts against MAIL_RECIPIENT_DAILY for its recipient and
 * purpose, in any 24 hours. A refused mail is not sent, is logged and audited by purpose (never the
 * address), and the answer does not change. Notices to an address its owner proved never count:
 * only that account can cause them, and a stranger must not be able to silence them.
 *
 * The recipient is an HMAC of the lower-cased address, under a key derived from the signing secret
 * (as refresh successors are: auth/core/refresh-tokens.ts), so a copy of D1 alone does not tell which
 * addresses got mail, not even by guessing them. Replacing that secret starts every budget afresh.
 */

const encoder = new TextEncoder();
const recipientKey = (config: Config) => serverHmacKey(config, "edge-auth-api mail recipient v1");

export type { BudgetedPurpose };

/**
 * The mailbox an address reaches, as the budget counts it: lower-cased, without a `+tag` (most mail
 * services deliver a+anything@ to a@), and for Gmail without dots. So variants of one mailbox share
 * its budget; the mail itself still goes to the address as written.
 */
export function mailboxOf(address: string): string {
  const at = address.lastIndexOf("@");
  let [local, domain] = [address.slice(0, at).toLowerCase(), address.slice(at + 1).toLowerCase()];
  local = local.split("+")[0] || local;
  if (domain === "googlemail.com") domain = "gmail.com";
  if (domain === "gmail.com") local = local.replaceAll(".", "");
  return `${local}@${domain}`;
}

/** The mail to `address` for `purpose`, as its budget counts it; `id` is the mail's key (a retry passes the same). */
export async function mailCount(config: Config, address: string, purpose: BudgetedPurpose, now: Date, id: string = crypto.randomUUID()): Promise<MailCount> {
  const mac = await crypto.subtle.sign("HMAC", await recipientKey(config), encoder.encode(mailboxOf(address)));
  return { id, recipient: toBase64Url(new Uint8Array(mac)), purpose, now, perDay: config.MAIL_RECIPIENT_DAILY };
}

/** Records a mail the budget refused: by purpose and account, never the address. */
export async function mailRefused(deps: Deps, purpose: BudgetedPurpose, userId: string | null): Promise<void> {
  await audit(deps, "mail_refused", { user_id: userId, purpose, reason: "recipient_budget" });
}

/** Counts one mail to `address` on its own (one statement); false, recorded, when the budget is spent. */
export async function spendMailBudget(deps: Deps, address: string, purpose: BudgetedPurpose, userId: string): Promise<boolean> {
  const [ok] = await countMail(deps.db, await mailCount(deps.config, address, purpose, new Date()));
  if (!ok) await mailRefused(deps, purpose, userId);
  return ok !== undefined;
}

/**
 * Issues a link to the account `who` selects (within its LIMITS), whose address is `address`, and
 * counts its mail, in one batch: the link is stored only while the address's budget has room (a
 * refused request leaves everything as it was), and counted only once stored. A queued job's link
 * (`job`: its token and count derive from the job's key) is stored once however often the job is
 * delivered, and the batch also reads it back with whether its mail went already. Returns the link
 * to mail, or nothing (no such account, LIMITS, or the budget: the last one recorded).
 */
export async function issueWithinBudget(deps: Deps, who: SQL, row: NewLink, limits: LinkLimits, count: MailCount, job = false) {
  const { db } = deps;
  const done = await batch(db, {
    inserted: insertLink(db, who, row, limits, withinBudget(count, job ? linkNotStored(db, row.tokenHash) : undefined)),
    counted: countMail(db, count, linkStored(db, row.tokenHash)),
    account: accountIdOf(db, who),
    sent: mailsCounted(db, count),
    earlier: job ? linkByHash(db, row.tokenHash) : undefined,
    mailed: job ? mailSentAt(db, count.id) : undefined,
  });
  const [fresh] = done.inserted;
  const earlier = done.earlier?.[0];
  const [account] = done.account;
  if (!fresh && !earlier && account && (done.sent[0]?.n ?? 0) >= count.perDay) await mailRefused(deps, count.purpose, account.id);
  if (fresh) return { ...fresh, usable: true, mailedAt: null };
  // A job delivered again: its link as it is now (used or expired meanwhile: nothing more to mail).
  if (earlier)
    return {
      userId: earlier.userId,
      email: earlier.email,
      usable: !earlier.usedAt && earlier.expiresAt > count.now,
      mailedAt: done.mailed?.[0]?.sentAt ?? null,
    };
  return undefined;
}
