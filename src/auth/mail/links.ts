import type { SQL } from "drizzle-orm";
import { type Config, ConfigError } from "../../config";
import { consumeAccountToken, consumedBy, insertLink, type LinkLimits, type NewLink, type TokenPurpose, usableFor } from "../../db/account-tokens";
import type { Db } from "../../db/client";
import { accountWithId } from "../../db/users";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { Refusal } from "../core/errors";

/**
 * Single-use links mailed to an account (auth/account/account.ts, auth/mailbox/reclaim.ts): 256 random bits each,
 * only their SHA-256 stored; using one is a single conditional statement (of two requests, one wins).
 */

const HOUR = 60 * 60 * 1000;
export const LIFETIME: Record<TokenPurpose, number> = { verify_email: 24 * HOUR, reset_password: HOUR / 2, change_email: 24 * HOUR, revoke_way_in: 72 * HOUR };

/**
 * How many may be live at once (db/account-tokens.ts LinkLimits). Verification and reset links: three
 * per account, and a fourth request mails nothing, so a stranger who knows the address can neither
 * end a link its owner holds nor flood the mailbox (what they trigger goes to the owner, who may use
 * any of the three). An address change: one per account (the newest wins), three per recipient.
 */
export const LIMITS: Record<TokenPurpose, LinkLimits> = {
  verify_email: { perAccount: 3 },
  reset_password: { perAccount: 3 },
  change_email: { replace: true, perRecipient: 3 },
  revoke_way_in: {},
};

const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
export const invalidLink = () => new Refusal("invalid_link");

/** Without APP_URL no link can be made: a deployment mistake, reported as the config error it is. */
export function requireAppUrl(config: Config) {
  if (!config.APP_URL) throw new ConfigError(["APP_URL: is required for mailed links (the app page that completes them)"]);
}

/** A new link's token (random, unless given: a queued job's, auth/mail/jobs.ts), and its row (the hash only). */
export async function newLink(
  purpose: TokenPurpose,
  now: Date,
  row: Omit<NewLink, "tokenHash" | "purpose" | "now" | "expiresAt"> = {},
  token = toBase64Url(randomBytes(32)),
) {
  return {
    token,
    row: { ...row, tokenHash: await sha256Base64Url(token), purpose, now, expiresAt: new Date(now.getTime() + LIFETIME[purpose]) } satisfies NewLink,
  };
}

/**
 * A "this was not me" link for a way in just added, as a statement for the batch that adds it
 * (written only if `added` holds there), and its token for the notice mail.
 */
export async function notMeLink(db: Db, userId: string, way: string, sessionId: string | null, now: Date, added: SQL) {
  const { token, row } = await newLink("revoke_way_in", now, { way, sessionId });
  return { token, statement: insertLink(db, accountWithId(userId), row, LIMITS.revoke_way_in, added) };
}

/**
 * A link about to be used: its account as it is now, and what the batch that uses it needs:
 * `consume(...conditions)`, the statement that uses it for this request (only if the conditions hold
 * too: of two requests, one wins), and `consumed`, true in that batch once it did. The one way a
 * mailed link is used.
 */
export async function openLink(db: Db, token: string, purpose: TokenPurpose, now: Date) {
  if (!TOKEN_FORMAT.test(token)) throw invalidLink();
  const tokenHash = await sha256Base64Url(token);
  const link = await usableFor(db, tokenHash, purpose, now);
  if (!link) throw invalidLink();
  const usedBy = crypto.randomUUID();
  return {
    ...link,
    tokenHash,
    consume: (...conditions: (SQL | undefined)[]) => consumeAccountToken(db, tokenHash, purpose, now, usedBy, ...conditions),
    consumed: consumedBy(db, tokenHash, usedBy),
  };
}
