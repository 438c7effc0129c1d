import { and, eq, gt, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "./client";
import { oauthConsents, oauthRequests } from "./oauth-server-tables";
import { sessions, users } from "./schema";
import { live } from "./sessions";

/**
 * Authorization requests in flight (auth/oauth-server/authorize.ts, consent.ts) and the consents
 * users gave. Every change to a request is one conditional statement: of two racing, one wins.
 */

export type NewOAuthRequest = typeof oauthRequests.$inferInsert;

export function insertRequest(db: Db, row: NewOAuthRequest) {
  return db.insert(oauthRequests).values(row);
}

/** A first-party session of the user as D1 holds it now (live, not an app's grant), or undefined. */
export function firstPartySession(db: Db, id: string, userId: string, now: Date) {
  return db
    .select({ id: sessions.id, userId: sessions.userId, authTime: sessions.authTime, amr: sessions.amr })
    .from(sessions)
    .where(and(eq(sessions.id, id), eq(sessions.userId, userId), isNull(sessions.clientId), live(now)))
    .get();
}

/** What may act on a request: the session (as read, with its sign-in time) and the time. */
export interface Holder {
  sessionId: string;
  userId: string;
  authTime: Date;
  now: Date;
}

/**
 * The request is open (undecided, unexpired) and `h` may hold it: nobody holds it yet, `h` does, or
 * `h` is a session of the holder's user signed in after the request was made (the re-sign-in that
 * prompt=login or max_age asks for). The session must still be live and first-party.
 */
const mayHold = (db: Db, h: Holder) =>
  and(
    isNull(oauthRequests.decidedAt),
    gt(oauthRequests.expiresAt, h.now),
    or(
      isNull(oauthRequests.sessionId),
      eq(oauthRequests.sessionId, h.sessionId),
      and(eq(oauthRequests.userId, h.userId), lt(oauthRequests.createdAt, h.authTime)),
    ),
    sql`exists ${db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.id, h.sessionId), eq(sessions.userId, h.userId), isNull(sessions.clientId), live(h.now)))}`,
  );

/** Takes (or keeps) the request for this session; the request, or undefined when it may not. */
export function holdRequest(db: Db, id: string, h: Holder) {
  return db
    .update(oauthRequests)
    .set({ sessionId: h.sessionId, userId: h.userId })
    .where(and(eq(oauthRequests.id, id), mayHold(db, h)))
    .returning()
    .get();
}

/** An open request as it stands, whoever holds it (a deny without a bearer). */
export function openRequest(db: Db, id: string, now: Date) {
  return db
    .select()
    .from(oauthRequests)
    .where(and(eq(oauthRequests.id, id), isNull(oauthRequests.decidedAt), gt(oauthRequests.expiresAt, now)))
    .get();
}

/** The decision, written once: approved with its code (and the session's auth_time and amr), or refused. */
export type Decision = { approved: true; codeHash: string; codeExpiresAt: Date; authTime: Date; amr: string[] } | { approved: false };

/**
 * Decides the request in one conditional UPDATE ... RETURNING: only while it is open and `h` (a
 * session, or null for a deny without one) may hold it. Of two racing decisions, one row comes back.
 */
export function decideRequest(db: Db, id: string, h: Holder | null, now: Date, decision: Decision) {
  const who = h ? { sessionId: h.sessionId, userId: h.userId } : {};
  const code = decision.approved ? { codeHash: decision.codeHash, codeExpiresAt: decision.codeExpiresAt, authTime: decision.authTime, amr: decision.amr } : {};
  const open = h ? mayHold(db, h) : and(isNull(oauthRequests.decidedAt), gt(oauthRequests.expiresAt, now));
  return db
    .update(oauthRequests)
    .set({ ...who, ...code, decidedAt: now, approved: decision.approved })
    .where(and(eq(oauthRequests.id, id), open))
    .returning()
    .get();
}

/** The scopes the user agreed this client may have for this resource ("" for none), or undefined. */
/**
 * The user's remembered consent for a client and resource: its scope as stored (what a write must find
 * to replace it), and whether it still counts (remembered in the user's current session epoch).
 */
export async function consentOf(db: Db, userId: string, clientId: string, resource: string) {
  return db
    .select({ scope: oauthConsents.scope, current: sql<number>`${oauthConsents.sessionEpoch} = ${users.sessionEpoch}` })
    .from(oauthConsents)
    .innerJoin(users, eq(users.id, oauthConsents.userId))
    .where(and(eq(oauthConsents.userId, userId), eq(oauthConsents.clientId, clientId), eq(oauthConsents.resource, resource)))
    .get();
}

/**
 * Remembers a consent in the user's current session epoch: `scope` replaces the row's only while the
 * row still holds `was` (what the caller read; undefined: no row). Returns no row when another
 * approval changed it meanwhile: read again and retry, so a union of scopes never loses one.
 */
export function rememberConsent(db: Db, row: { userId: string; clientId: string; resource: string; scope: string; now: Date }, was: string | undefined) {
  const epoch = sql`(SELECT ${users.sessionEpoch} FROM ${users} WHERE ${users.id} = ${row.userId})`;
  return db
    .insert(oauthConsents)
    .values({
      userId: row.userId,
      clientId: row.clientId,
      resource: row.resource,
      scope: row.scope,
      sessionEpoch: epoch,
      createdAt: row.now,
      updatedAt: row.now,
    })
    .onConflictDoUpdate({
      target: [oauthConsents.userId, oauthConsents.clientId, oauthConsents.resource],
      set: { scope: row.scope, sessionEpoch: epoch, updatedAt: row.now },
      setWhere: was === undefined ? sql`0` : eq(oauthConsents.scope, was),
    })
    .returning({ scope: oauthConsents.scope })
    .get();
}

/** Housekeeping: requests (and their codes, which never outlive them by much) ended before `before`. */
export async function deleteExpiredRequests(db: Db, before: Date): Promise<number> {
  return (await db.delete(oauthRequests).where(lt(oauthRequests.expiresAt, before)).returning({ id: oauthRequests.id })).length;
}
