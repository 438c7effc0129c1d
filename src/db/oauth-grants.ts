import { and, eq, gt, isNull, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { oauthClients, oauthRequests } from "./oauth-server-tables";
import { sessions, users } from "./schema";
import { clientEnabled, ownerClaims } from "./session-rotation";
import { live, reachable, revokedColumns } from "./sessions";
import { mayHoldSession } from "./standing";

/**
 * A code's exchange for a grant (auth/oauth-server/token.ts), as statements of one batch: the code is
 * used only if everything the exchange presents matches what the request stored, in the statement
 * that uses it (so of two exchanges exactly one wins, and a wrong verifier leaves the code unused);
 * the grant (a session with a client) is written only if that happened and the user may still hold
 * a session and the approving session is still live.
 */
export interface CodeExchange {
  codeHash: string;
  clientId: string;
  redirectUri: string;
  challenge: string; // S256 of the code_verifier presented
  grantId: string; // the new grant's session id
  refreshTokenHash: string;
  userAgent: string | null;
  now: Date;
  accessExpiresAt: Date;
  // The grant's end when it comes with a refresh token (null: the client may not refresh); else it
  // ends with its access token. Which, the statement decides from the scope the code was for.
  refreshExpiresAt: Date | null;
  requireVerified: boolean;
}

/** OpenID Connect Core 11: an OpenID grant gets a refresh token only with offline_access (auth/oauth-server/token.ts refreshAllowed). */
const refreshable = sql`((' ' || ${oauthRequests.scope} || ' ') LIKE '% offline_access %' OR (' ' || ${oauthRequests.scope} || ' ') NOT LIKE '% openid %')`;

/** True in the batch once this exchange used the code. */
const usedByThisExchange = (x: CodeExchange) => and(eq(oauthRequests.codeHash, x.codeHash), eq(oauthRequests.grantId, x.grantId));

export function exchangeCodeStatements(db: Db, x: CodeExchange) {
  const value = (v: string | number | null, name: string) => sql`${v}`.as(name);
  const approverLive = sql`EXISTS (SELECT 1 FROM ${sessions} AS approver WHERE approver.id = ${oauthRequests.sessionId} AND approver.revoked_at IS NULL AND approver.expires_at > ${x.now.getTime()})`;
  return {
    code: db
      .update(oauthRequests)
      .set({ codeUsedAt: x.now, grantId: x.grantId })
      .where(
        and(
          eq(oauthRequests.codeHash, x.codeHash),
          isNull(oauthRequests.codeUsedAt),
          gt(oauthRequests.codeExpiresAt, x.now),
          eq(oauthRequests.clientId, x.clientId),
          eq(oauthRequests.redirectUri, x.redirectUri),
          eq(oauthRequests.codeChallenge, x.challenge),
          eq(oauthRequests.approved, true),
          clientEnabled(x.clientId),
        ),
      )
      .returning({ scope: oauthRequests.scope, resource: oauthRequests.resource, nonce: oauthRequests.nonce }),
    grant: db
      .insert(sessions)
      .select(
        db
          .select({
            id: value(x.grantId, "id"),
            userId: users.id,
            refreshTokenHash: value(x.refreshTokenHash, "refresh_token_hash"),
            userAgent: value(x.userAgent, "user_agent"),
            createdAt: value(x.now.getTime(), "created_at"),
            lastUsedAt: value(x.now.getTime(), "last_used_at"),
            accessExpiresAt: value(x.accessExpiresAt.getTime(), "access_expires_at"),
            expiresAt: (x.refreshExpiresAt
              ? sql`CASE WHEN ${refreshable} THEN ${x.refreshExpiresAt.getTime()} ELSE ${x.accessExpiresAt.getTime()} END`
              : sql`${x.accessExpiresAt.getTime()}`
            ).as("expires_at"),
            revokedAt: sql`NULL`.as("revoked_at"),
            passwordFailures: sql`0`.as("password_failures"),
            amr: sql`${oauthRequests.amr}`.as("amr"),
            authTime: sql`${oauthRequests.authTime}`.as("auth_time"),
            clientId: sql`${oauthRequests.clientId}`.as("client_id"),
            scope: sql`${oauthRequests.scope}`.as("scope"),
            resource: sql`${oauthRequests.resource}`.as("resource"),
            approvedBy: sql`${oauthRequests.sessionId}`.as("approved_by"),
            orgId: sql`NULL`.as("org_id"), // an app's grant carries no organization
            switchedWith: sql`NULL`.as("switched_with"),
          })
          .from(oauthRequests)
          .innerJoin(users, eq(users.id, oauthRequests.userId))
          .where(and(usedByThisExchange(x), mayHoldSession(x.requireVerified), approverLive)),
      )
      .returning({ id: sessions.id, expiresAt: sessions.expiresAt, amr: sessions.amr, authTime: sessions.authTime }),
    owner: ownerClaims(db, and(eq(sessions.id, x.grantId), live(x.now))),
    clientUsed: markClientUsed(db, x.clientId, x.now, sql`EXISTS (SELECT 1 FROM ${sessions} WHERE ${sessions.id} = ${x.grantId})`),
  };
}

/** The request a used code belongs to, and the grant its first exchange opened: for a second use, which ends that grant. */
export function usedCode(db: Db, codeHash: string) {
  return db
    .select({ grantId: oauthRequests.grantId, userId: oauthRequests.userId, clientId: oauthRequests.clientId, usedAt: oauthRequests.codeUsedAt })
    .from(oauthRequests)
    .where(eq(oauthRequests.codeHash, codeHash))
    .get();
}

/** A client's first token: a registration that got one is kept (the cron removes those that never did). */
export function markClientUsed(db: Db, clientId: string, now: Date, onlyIf?: SQL) {
  return db
    .update(oauthClients)
    .set({ firstTokenAt: now })
    .where(and(eq(oauthClients.id, clientId), isNull(oauthClients.firstTokenAt), onlyIf));
}

/** A grant by its current refresh token, held by `clientId`: for revocation (RFC 7009). */
export function grantByRefreshHash(db: Db, refreshTokenHash: string, clientId: string) {
  return db
    .select({ id: sessions.id, userId: sessions.userId, scope: sessions.scope, resource: sessions.resource })
    .from(sessions)
    .where(and(eq(sessions.refreshTokenHash, refreshTokenHash), eq(sessions.clientId, clientId)))
    .get();
}

/** The user behind a live grant of `clientId`, for /oauth2/userinfo: one read, the grant's liveness with it. */
export function grantUser(db: Db, grantId: string, clientId: string, now: Date, requireVerified: boolean) {
  return db
    .select({ id: users.id, username: users.username, email: users.email, emailVerifiedAt: users.emailVerifiedAt })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.id, grantId), eq(sessions.clientId, clientId), live(now), mayHoldSession(requireVerified)))
    .get();
}

/**
 * Revokes a client's grants (sessions with its client_id), optionally only one user's. Like
 * revokeSession, matches grants revoked already while their access tokens may live, so a retry after
 * a failed KV write finds them again.
 */
export function revokeGrants(db: Db, where: { clientId: string; userId?: string }, now: Date) {
  return db
    .update(sessions)
    .set({ revokedAt: sql`coalesce(${sessions.revokedAt}, ${now.getTime()})` })
    .where(and(eq(sessions.clientId, where.clientId), where.userId ? eq(sessions.userId, where.userId) : undefined, reachable(now)))
    .returning(revokedColumns);
}
