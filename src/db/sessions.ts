import { and, desc, eq, exists, gt, gte, inArray, isNull, lt, ne, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { passkeys, sessions, users } from "./schema";
import { accountsWhere, mayHoldSession } from "./standing";

export type NewSession = typeof sessions.$inferInsert;

/** Refreshable: not revoked and within its absolute lifetime. */
export const live = (now: Date) => and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now));
/**
 * The session's user may hold one (db/standing.ts). Checked in the same statement as every token
 * issue, so a disable that lands meanwhile wins.
 */
export const ownerMayHoldSession = (requireVerified: boolean) => sql`${sessions.userId} IN ${accountsWhere(mayHoldSession(requireVerified))}`;
/**
 * The caller's own first-party session, live, its owner still allowed one: what an access token
 * re-issued for it rests on (an organization switch, a guest's upgrade), in the statement that writes.
 */
export const ownLiveSession = (s: { sessionId: string; userId: string; now: Date; requireVerified: boolean }) =>
  and(eq(sessions.id, s.sessionId), eq(sessions.userId, s.userId), isNull(sessions.clientId), live(s.now), ownerMayHoldSession(s.requireVerified));
/**
 * What a revocation must reach: a live session, or any session one of whose access tokens may still
 * be valid, revoked already or not. Revoking such a row again rewrites its KV entry: a retry after a
 * failed KV write completes the revocation instead of finding nothing to do.
 */
export const reachable = (now: Date) => or(live(now), gt(sessions.accessExpiresAt, now));
/** A session of the API's own sign-in; a grant to an app (auth/oauth-server/) has a client_id. */
const firstParty = isNull(sessions.clientId);
export const revokedColumns = { id: sessions.id, userId: sessions.userId, accessExpiresAt: sessions.accessExpiresAt };
/** The newest access token's expiry: as late as any before it, and never past the session's end. */
export const extendAccess = (until: Date) => sql`max(${sessions.accessExpiresAt}, min(${until.getTime()}, ${sessions.expiresAt}))`;

export function insertSession(db: Db, row: NewSession) {
  return db.insert(sessions).values(row);
}

// Written out with their tables: inside a RETURNING clause Drizzle would leave a column unqualified.
const raw = {
  epoch: sql.raw('"users"."session_epoch"'),
  userId: sql.raw('"users"."id"'),
  totpOn: sql.raw('"users"."totp_enabled_at" IS NOT NULL'),
  passkeyOwner: sql.raw('"passkeys"."user_id"'),
  owner: sql.raw('"sessions"."user_id"'),
};

/**
 * Inserts the session only if `condition` holds on the user's row: what the sign-in's decision rested
 * on (db/standing.ts signInConditions: the user may hold a session, the password is still the version
 * checked, a challenge was used by this request...). Returns the session's id with the owner's epoch
 * and second factor, or no row.
 */
export function insertSessionIf(
  db: Db,
  row: Required<Pick<NewSession, "id" | "userId" | "refreshTokenHash" | "createdAt" | "lastUsedAt" | "accessExpiresAt" | "expiresAt" | "amr" | "authTime">> & {
    userAgent: string | null;
  },
  condition: SQL,
) {
  const value = (v: string | number | null, name: string) => sql`${v}`.as(name);
  return db
    .insert(sessions)
    .select(
      db
        .select({
          id: value(row.id, "id"),
          userId: users.id,
          refreshTokenHash: value(row.refreshTokenHash, "refresh_token_hash"),
          userAgent: value(row.userAgent, "user_agent"),
          createdAt: value(row.createdAt.getTime(), "created_at"),
          lastUsedAt: value(row.lastUsedAt.getTime(), "last_used_at"),
          accessExpiresAt: value(row.accessExpiresAt.getTime(), "access_expires_at"),
          expiresAt: value(row.expiresAt.getTime(), "expires_at"),
          revokedAt: sql`NULL`.as("revoked_at"),
          passwordFailures: sql`0`.as("password_failures"),
          amr: value(JSON.stringify(row.amr), "amr"),
          authTime: value(row.authTime.getTime(), "auth_time"),
          clientId: sql`NULL`.as("client_id"),
          scope: sql`NULL`.as("scope"),
          resource: sql`NULL`.as("resource"),
          approvedBy: sql`NULL`.as("approved_by"),
          orgId: sql`NULL`.as("org_id"), // a sign-in starts with no active organization (POST /orgs/switch picks one)
          switchedWith: sql`NULL`.as("switched_with"),
        })
        .from(users)
        .where(and(eq(users.id, row.userId), condition)),
    )
    .returning({
      id: sessions.id,
      // What the access token carries, read in the insert itself (the same transaction as a read of its
      // own, a statement fewer): the owner's epoch, and whether they hold a second factor.
      epoch: sql<number>`(SELECT ${raw.epoch} FROM ${users} WHERE ${raw.userId} = ${raw.owner})`.mapWith(Number).as("epoch"),
      secondFactor:
        sql<boolean>`(SELECT ${raw.totpOn} OR EXISTS (SELECT 1 FROM ${passkeys} WHERE ${raw.passkeyOwner} = ${raw.userId}) FROM ${users} WHERE ${raw.userId} = ${raw.owner})`
          .mapWith(Boolean)
          .as("second_factor"),
    });
}

// At most this many sessions end per login: each costs a KV write, and Workers allow 1,000 a request.
// (Only a user who had far more sessions than the cap before it existed has more to end; the next
// logins end the rest.)
const MAX_EVICTED_PER_LOGIN = 20;

/** Ends the user's oldest live sessions beyond the newest `cap` (the per-user session cap). Grants to apps are not sessions of the API: never counted, never ended here. */
export function revokeBeyondCap(db: Db, userId: string, now: Date, cap: number) {
  const oldest = db
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(eq(sessions.userId, userId), firstParty, live(now)))
    .orderBy(desc(sessions.createdAt), desc(sessions.id))
    .limit(MAX_EVICTED_PER_LOGIN)
    .offset(cap);
  return db.update(sessions).set({ revokedAt: now }).where(inArray(sessions.id, oldest)).returning(revokedColumns);
}

/**
 * Revokes one session, found by id (optionally only the user's own; `withGrants`: and the apps' grants
 * its approvals opened, for a session taken to be stolen) or by its current refresh token hash.
 * Matches a session already revoked while its access tokens may live, so a retry can repair KV.
 */
export function revokeSession(db: Db, where: { id: string; userId?: string; withGrants?: boolean } | { refreshTokenHash: string }, now: Date, onlyIf?: SQL) {
  const match =
    "refreshTokenHash" in where
      ? eq(sessions.refreshTokenHash, where.refreshTokenHash)
      : and(
          where.withGrants ? or(eq(sessions.id, where.id), eq(sessions.approvedBy, where.id)) : eq(sessions.id, where.id),
          where.userId ? eq(sessions.userId, where.userId) : undefined,
        );
  return db
    .update(sessions)
    .set({ revokedAt: sql`coalesce(${sessions.revokedAt}, ${now.getTime()})` })
    .where(and(match, reachable(now), onlyIf)) // onlyIf: in a batch, only if an earlier write happened
    .returning(revokedColumns);
}

/**
 * Revokes every session of a user that is live or may hold a live access token, except one if given.
 * Their access tokens are revoked by the user's epoch (auth/core/revocations.ts), not one by one.
 */
export function revokeUserSessions(db: Db, userId: string, now: Date, exceptId?: string, onlyIf?: SQL) {
  // onlyIf: in a batch after a conditional write, only if that write happened.
  const changed = onlyIf;
  return db
    .update(sessions)
    .set({ revokedAt: now })
    .where(and(eq(sessions.userId, userId), exceptId ? ne(sessions.id, exceptId) : undefined, isNull(sessions.revokedAt), reachable(now), changed))
    .returning({ id: sessions.id });
}

/**
 * True in a batch while the session is live: a way in added by a session is written only if that
 * session was not ended meanwhile (by a reset, say).
 */
export const sessionLive = (db: Db, id: string, now: Date) =>
  exists(
    db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.id, id), live(now))),
  );

/** True in a batch once the session `id` is stored (a sign-in's later statements depend on it). */
export const sessionExists = (db: Db, id: string) => exists(db.select({ id: sessions.id }).from(sessions).where(eq(sessions.id, id)));

export async function isSessionLive(db: Db, id: string, now: Date): Promise<boolean> {
  return (
    (await db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.id, id), live(now)))
      .get()) !== undefined
  );
}

export interface SessionCursor {
  createdAt: number;
  id: string;
}

/**
 * The user's sessions (not grants to apps) that are live, used since `idleSince` (the idle timeout)
 * and signed in since an admin's cut-off, or may hold a live access token: newest first, keyset-paginated.
 */
export async function listSessions(
  db: Db,
  userId: string,
  now: Date,
  limits: { idleSince: Date; signedInSince: Date | null },
  limit: number,
  after?: SessionCursor,
) {
  const page = after
    ? or(lt(sessions.createdAt, new Date(after.createdAt)), and(eq(sessions.createdAt, new Date(after.createdAt)), lt(sessions.id, after.id)))
    : undefined;
  return db
    .select({ id: sessions.id, createdAt: sessions.createdAt, lastUsedAt: sessions.lastUsedAt, userAgent: sessions.userAgent, expiresAt: sessions.expiresAt })
    .from(sessions)
    .where(
      and(
        eq(sessions.userId, userId),
        firstParty,
        isNull(sessions.revokedAt),
        or(and(live(now), gt(sessions.lastUsedAt, limits.idleSince)), gt(sessions.accessExpiresAt, now)),
        limits.signedInSince ? gte(sessions.authTime, limits.signedInSince) : undefined,
        page,
      ),
    )
    .orderBy(desc(sessions.createdAt), desc(sessions.id))
    .limit(limit)
    .all();
}

/** When the last session of anyone ends (ms), dead ones included: how long a cut-off for every session must last. */
export async function latestSessionEnd(db: Db): Promise<number | null> {
  const row = await db
    .select({ end: sql<number | null>`max(${sessions.expiresAt})` })
    .from(sessions)
    .get();
  return row?.end ?? null;
}

/** Housekeeping: drops sessions (and, by cascade, their rotated hashes) dead for longer than `keepMs`. */
export async function deleteDeadSessions(db: Db, now: Date, keepMs: number) {
  const before = new Date(now.getTime() - keepMs);
  const gone = await db
    .delete(sessions)
    .where(or(lt(sessions.expiresAt, before), lt(sessions.revokedAt, before)))
    .returning({ id: sessions.id });
  return gone.length;
}
