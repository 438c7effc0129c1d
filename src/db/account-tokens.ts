import { and, eq, exists, gt, inArray, isNull, lt, ne, notExists, or, type SQL, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { accountTokens, users } from "./schema";
import { accountsWhere, notDisabled } from "./standing";

export type TokenPurpose = (typeof accountTokens.$inferSelect)["purpose"];
export const ALL_PURPOSES: TokenPurpose[] = ["verify_email", "reset_password", "change_email", "revoke_way_in"];

export interface NewLink {
  tokenHash: string;
  purpose: TokenPurpose;
  /** Where it goes: given (a new address), or else the account's own address (none: no link). */
  email?: string;
  now: Date;
  expiresAt: Date;
  sessionId?: string | null;
  way?: string | null;
}

/**
 * How many links may be live at once, so that nobody can turn the mail flows against an address's
 * owner: `perAccount` of this purpose for the account (a request beyond it issues nothing: the
 * owner's mailbox holds live links already), `perRecipient` of this purpose to the address, whoever
 * asked. `replace`: the account's older live links of this purpose end first (its own change of mind).
 */
export interface LinkLimits {
  perAccount?: number;
  perRecipient?: number;
  replace?: boolean;
}

const live = (now: Date) => and(isNull(accountTokens.usedAt), gt(accountTokens.expiresAt, now));
const countLive = (where: SQL, now: Date) => sql<number>`(SELECT count(*) FROM ${accountTokens} WHERE ${and(where, live(now))})`;

/**
 * The link's row as an INSERT ... SELECT from the account that `who` selects (by id, or by address
 * for a reset), written only within the limits and if `condition` holds (in a batch: the change it
 * announces happened). No row for an address that matches nobody, a disabled account, or an account
 * without an address when the link goes to its own: the same statement either way.
 */
export function insertLink(db: Db, who: SQL, t: NewLink, limits: LinkLimits = {}, condition?: SQL) {
  const to = t.email === undefined ? sql`${users.email}` : sql`${t.email}`;
  return db
    .insert(accountTokens)
    .select(
      db
        .select({
          tokenHash: sql`${t.tokenHash}`.as("token_hash"),
          userId: users.id,
          purpose: sql`${t.purpose}`.as("purpose"),
          email: to.as("email"),
          sessionId: sql`${t.sessionId ?? null}`.as("session_id"),
          way: sql`${t.way ?? null}`.as("way"),
          attempts: sql`0`.as("attempts"),
          createdAt: sql`${t.now.getTime()}`.as("created_at"),
          expiresAt: sql`${t.expiresAt.getTime()}`.as("expires_at"),
          usedAt: sql`NULL`.as("used_at"),
          usedBy: sql`NULL`.as("used_by"),
        })
        .from(users)
        .where(
          and(
            who,
            notDisabled(),
            sql`${to} IS NOT NULL`,
            limits.perAccount === undefined
              ? undefined
              : sql`${countLive(and(sql`${accountTokens.userId} = ${users.id}`, eq(accountTokens.purpose, t.purpose))!, t.now)} < ${limits.perAccount}`,
            limits.perRecipient === undefined
              ? undefined
              : sql`${countLive(and(sql`${accountTokens.email} = ${to}`, eq(accountTokens.purpose, t.purpose))!, t.now)} < ${limits.perRecipient}`,
            condition,
          ),
        ),
    )
    .returning({ userId: accountTokens.userId, email: accountTokens.email });
}

/**
 * Ends the live links of this purpose of the account `who` selects, but `except` (the one that
 * replaces them), only if `onlyIf` holds (in a batch: the replacing link was stored).
 */
export const endLinksOf = (db: Db, who: SQL, purpose: TokenPurpose, now: Date, { except, onlyIf }: { except: string; onlyIf: SQL }) =>
  db
    .update(accountTokens)
    .set({ usedAt: now })
    .where(
      and(
        sql`${accountTokens.userId} IN (SELECT ${users.id} FROM ${users} WHERE ${who})`,
        eq(accountTokens.purpose, purpose),
        isNull(accountTokens.usedAt),
        ne(accountTokens.tokenHash, except),
        onlyIf,
      ),
    );

/** True in a batch while no link with this hash is stored (a queued job's link is made once). */
export const linkNotStored = (db: Db, tokenHash: string) =>
  notExists(db.select({ h: accountTokens.tokenHash }).from(accountTokens).where(eq(accountTokens.tokenHash, tokenHash)));

/** The link with this hash as it is (a read for a batch): whom it went to, and whether it still works. */
export const linkByHash = (db: Db, tokenHash: string) =>
  db
    .select({ userId: accountTokens.userId, email: accountTokens.email, usedAt: accountTokens.usedAt, expiresAt: accountTokens.expiresAt })
    .from(accountTokens)
    .where(eq(accountTokens.tokenHash, tokenHash));

/** True in a batch once the link with this hash is stored. */
export const linkStored = (db: Db, tokenHash: string) =>
  exists(db.select({ h: accountTokens.tokenHash }).from(accountTokens).where(eq(accountTokens.tokenHash, tokenHash)));

/** A link works for a live, unused, unexpired token of an account that is not disabled. */
const usable = (tokenHash: string, purpose: TokenPurpose, now: Date) =>
  and(eq(accountTokens.tokenHash, tokenHash), eq(accountTokens.purpose, purpose), live(now), sql`${accountTokens.userId} IN ${accountsWhere(notDisabled())}`);

/** The link and its account as they are now (a cheap read before the batch that uses it). */
export async function usableFor(db: Db, tokenHash: string, purpose: TokenPurpose, now: Date) {
  const found = await batch(db, {
    link: db
      .select({ userId: accountTokens.userId, email: accountTokens.email, sessionId: accountTokens.sessionId, way: accountTokens.way })
      .from(accountTokens)
      .where(usable(tokenHash, purpose, now)),
    user: db
      .select()
      .from(users)
      .where(
        inArray(
          users.id,
          db
            .select({ id: accountTokens.userId })
            .from(accountTokens)
            .where(usable(tokenHash, purpose, now)),
        ),
      ),
  });
  const link = found.link[0];
  const user = found.user[0];
  return link && user ? { ...link, user } : undefined;
}

/** Ends the user's live links of these purposes (a reset, a password or address change, logout-all). */
export function endLinks(db: Db, userId: string, purposes: TokenPurpose[], now: Date, onlyIf?: SQL) {
  return db
    .update(accountTokens)
    .set({ usedAt: now })
    .where(and(eq(accountTokens.userId, userId), inArray(accountTokens.purpose, purposes), isNull(accountTokens.usedAt), onlyIf));
}

/**
 * Uses a token, in one conditional statement: of two requests with one token exactly one gets the
 * row. Nothing for a token that is unknown, used, superseded, expired or of another purpose, or
 * when `condition` (the account as the caller checked it) no longer holds.
 */
export function consumeAccountToken(db: Db, tokenHash: string, purpose: TokenPurpose, now: Date, usedBy: string, ...conditions: (SQL | undefined)[]) {
  return db
    .update(accountTokens)
    .set({ usedAt: now, usedBy })
    .where(and(usable(tokenHash, purpose, now), ...conditions))
    .returning({ userId: accountTokens.userId, email: accountTokens.email });
}

/**
 * True in a batch after consumeAccountToken took this token for this request (`usedBy`, a random id:
 * two requests can share a clock reading, never this): later statements depend on it.
 */
export const consumedBy = (db: Db, tokenHash: string, usedBy: string) =>
  exists(
    db
      .select({ h: accountTokens.tokenHash })
      .from(accountTokens)
      .where(and(eq(accountTokens.tokenHash, tokenHash), eq(accountTokens.usedBy, usedBy))),
  );

/**
 * Takes one of the codes a reset may try (a reset that needs a second factor): counted on the links,
 * so only a link holder can spend them, at most `perDay` over the account's reset links of the last
 * day. One conditional statement: concurrent tries cannot exceed it. No row when the budget is spent.
 */
export function takeResetAttempt(db: Db, tokenHash: string, userId: string, now: Date, perDay: number) {
  const spent = sql`(SELECT coalesce(sum(${accountTokens.attempts}), 0) FROM ${accountTokens} WHERE ${accountTokens.userId} = ${userId} AND ${accountTokens.purpose} = 'reset_password' AND ${accountTokens.createdAt} > ${now.getTime() - 86_400_000})`;
  return db
    .update(accountTokens)
    .set({ attempts: sql`${accountTokens.attempts} + 1` })
    .where(and(eq(accountTokens.tokenHash, tokenHash), sql`${spent} < ${perDay}`))
    .returning({ attempts: accountTokens.attempts });
}

/** Housekeeping: links that expired or were used before `before` (former addresses included); returns how many. */
export async function deleteOldLinks(db: Db, before: Date): Promise<number> {
  const gone = await db
    .delete(accountTokens)
    .where(or(lt(accountTokens.expiresAt, before), lt(accountTokens.usedAt, before)))
    .returning({ h: accountTokens.tokenHash });
  return gone.length;
}
