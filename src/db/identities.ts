import { and, eq, gt, isNull, lt, ne, or, type SQL, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { identities, oauthFlows, passkeys, users } from "./schema";

/** Queries for social sign-in: identities and the flows in flight (auth/social/flow.ts). */

export type NewIdentity = typeof identities.$inferInsert;
export type NewFlow = typeof oauthFlows.$inferInsert;

/**
 * What a provider's answer meets, in one round trip: the identity (issuer, subject) with its account,
 * and the account that has the address the provider gave, if any.
 */
export async function findForProfile(db: Db, issuer: string, subject: string, email: string | null) {
  const theIdentity = and(eq(identities.issuer, issuer), eq(identities.subject, subject));
  const found = await batch(db, {
    identity: db.select().from(identities).where(theIdentity),
    owner: db.select().from(users).where(sql`${users.id} = (SELECT ${identities.userId} FROM ${identities} WHERE ${theIdentity})`),
    byAddress: email ? db.select().from(users).where(eq(users.email, email)) : undefined,
  });
  const [identity] = found.identity;
  const [user] = found.owner;
  return { linked: identity && user ? { identity, user } : undefined, byAddress: found.byAddress?.[0] };
}

/** Whether these usernames are taken (regardless of case): which one a new social account can have. */
export async function takenUsernames(db: Db, candidates: string[]): Promise<Set<string>> {
  const lower = candidates.map((c) => c.toLowerCase());
  const rows = await db
    .select({ name: sql<string>`lower(${users.username})` })
    .from(users)
    .where(
      sql`lower(${users.username}) IN (${sql.join(
        lower.map((l) => sql`${l}`),
        sql`, `,
      )})`,
    );
  return new Set(rows.map((r) => r.name));
}

export function insertIdentity(db: Db, row: NewIdentity) {
  return db.insert(identities).values(row).returning({ id: identities.id });
}

/** True in a batch once the identity `id` is stored (a link's later statements depend on it). */
export const identityStored = (id: string) => sql`EXISTS (SELECT 1 FROM ${identities} WHERE ${identities.id} = ${id})`;

/** A sign-in with the identity: when it was used, and the address the provider gives now. */
export function touchIdentity(db: Db, id: string, email: string | null, emailVerified: boolean, now: Date) {
  return db.update(identities).set({ lastUsedAt: now, email, emailVerified }).where(eq(identities.id, id));
}

export function listIdentities(db: Db, userId: string) {
  return db.select().from(identities).where(eq(identities.userId, userId));
}

/**
 * True while the account keeps a way to sign in besides the passkey or identity named: a password,
 * another passkey, another identity. A condition of the removal itself: of two removals at once, the
 * second finds the first done and refuses.
 */
export function anotherWayIn(userId: string, except: { passkey?: string; identity?: string }): SQL {
  return or(
    sql`EXISTS (SELECT 1 FROM ${users} WHERE ${users.id} = ${userId} AND ${users.passwordHash} <> '')`,
    sql`EXISTS (SELECT 1 FROM ${passkeys} WHERE ${passkeys.userId} = ${userId} AND ${passkeys.id} <> ${except.passkey ?? ""})`,
    sql`EXISTS (SELECT 1 FROM ${identities} WHERE ${identities.userId} = ${userId} AND ${identities.id} <> ${except.identity ?? ""})`,
  )!;
}

/** Unlinks an identity of the user, only if another way in remains (and `onlyIf`). */
export function deleteIdentity(db: Db, id: string, userId: string, onlyIf?: SQL) {
  return db
    .delete(identities)
    .where(and(eq(identities.id, id), eq(identities.userId, userId), anotherWayIn(userId, { identity: id }), onlyIf))
    .returning({ id: identities.id, provider: identities.provider });
}

/**
 * A password reset: every identity goes except those whose provider vouches for the very address
 * the reset was mailed to (the same mailbox speaks for both). Only if `onlyIf` holds.
 */
export function deleteIdentitiesOnReset(db: Db, userId: string, address: string, onlyIf: SQL) {
  return db
    .delete(identities)
    .where(and(eq(identities.userId, userId), or(ne(identities.email, address), isNull(identities.email), eq(identities.emailVerified, false)), onlyIf))
    .returning({ id: identities.id });
}

export function insertFlow(db: Db, row: NewFlow) {
  return db.insert(oauthFlows).values(row);
}

/** A link flow made by a signed-in request, claimed by the browser that will carry it (once, while fresh). */
export function claimLinkFlow(db: Db, id: string, provider: string, browser: string, now: Date) {
  return db
    .update(oauthFlows)
    .set({ browser })
    .where(
      and(eq(oauthFlows.id, id), eq(oauthFlows.provider, provider), eq(oauthFlows.purpose, "link"), eq(oauthFlows.browser, ""), gt(oauthFlows.expiresAt, now)),
    )
    .returning();
}

/** The callback: the flow its state names, started by this browser, unused and fresh, used now (of two callbacks, one wins). */
export function useFlow(db: Db, id: string, provider: string, browser: string, now: Date) {
  return db
    .update(oauthFlows)
    .set({ usedAt: now })
    .where(
      and(eq(oauthFlows.id, id), eq(oauthFlows.provider, provider), eq(oauthFlows.browser, browser), isNull(oauthFlows.usedAt), gt(oauthFlows.expiresAt, now)),
    )
    .returning()
    .get();
}

/** Leaves the one-time code the app exchanges (POST /oauth/exchange). */
export function setGrant(db: Db, id: string, grant: { hash: string; userId: string; linked?: NewFlow["linked"]; expiresAt: Date }) {
  return db
    .update(oauthFlows)
    .set({ grant: grant.hash, grantUserId: grant.userId, linked: grant.linked ?? null, grantExpiresAt: grant.expiresAt })
    .where(eq(oauthFlows.id, id));
}

/**
 * What ties an exchange to the browser that started the flow: the verifier's S256 (a flow started
 * with a code_challenge takes only that) or the flow cookie's SHA-256 (a flow started without one).
 */
export interface ExchangeProof {
  challenge?: string;
  browser?: string;
}

/**
 * Exchanges the one-time code: once, while fresh (of two exchanges, one wins), and for a sign-in
 * only with its proof (a link is checked against the session afterwards). Returns the flow. A
 * refused proof leaves the code unspent: whoever holds the proof can still finish.
 */
export function exchangeGrant(db: Db, hash: string, now: Date, proof: ExchangeProof) {
  const bound: (SQL | undefined)[] = [eq(oauthFlows.purpose, "link")];
  if (proof.challenge) bound.push(eq(oauthFlows.exchangeChallenge, proof.challenge));
  if (proof.browser) bound.push(and(isNull(oauthFlows.exchangeChallenge), eq(oauthFlows.browser, proof.browser)));
  return db
    .update(oauthFlows)
    .set({ exchangedAt: now })
    .where(and(eq(oauthFlows.grant, hash), isNull(oauthFlows.exchangedAt), gt(oauthFlows.grantExpiresAt, now), or(...bound)))
    .returning()
    .get();
}

/**
 * Housekeeping: flows whose start and one-time code both expired before `before` (used or not: a
 * flow lives minutes; its row must not outlive that by much). Returns how many.
 */
export async function deleteExpiredFlows(db: Db, before: Date): Promise<number> {
  const gone = await db
    .delete(oauthFlows)
    .where(and(lt(oauthFlows.expiresAt, before), or(isNull(oauthFlows.grantExpiresAt), lt(oauthFlows.grantExpiresAt, before))))
    .returning({ id: oauthFlows.id });
  return gone.length;
}
