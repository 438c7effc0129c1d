import { and, eq, gt, gte, isNull, type SQL, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { oauthClients } from "./oauth-server-tables";
import { memberships, organizations } from "./organization-tables";
import { rotatedRefreshTokens, sessions, users } from "./schema";
import { extendAccess, live, ownerMayHoldSession } from "./sessions";
import { holdsSecondFactor } from "./users";

/**
 * Refresh-token rotation on a session row (auth/core/refresh.ts), for the API's own sessions and
 * apps' grants alike: the conditional swap, the retry's reissue, and the rotated tokens' record.
 */

/** The user columns an access token needs, read in the same batch as the session write. */
const claimColumns = {
  id: users.id,
  username: users.username,
  roles: users.roles,
  epoch: users.sessionEpoch,
  emailVerifiedAt: users.emailVerifiedAt,
  email: users.email,
  // What REQUIRE_MFA asks (auth/core/mfa-policy.ts): a guest is exempt; TOTP or a passkey enrolled shows here.
  isGuest: users.isGuest,
  secondFactor: holdsSecondFactor,
  // The session's active organization, only while the user is still its member (null otherwise):
  // a removal, a role change or a deletion shows at the next refresh with no statement of its own.
  // Aliased: D1 hands a batch's rows back as objects, where a second "id" column would overwrite the user's.
  orgId: sql<string | null>`${organizations.id}`.as("org_id"),
  orgSlug: sql<string | null>`${organizations.slug}`.as("org_slug"),
  orgRole: sql<string | null>`${memberships.role}`.as("org_role"),
};

/** What a session's next access token says of its owner (and the active organization), for the session `where` matches. */
export const ownerClaims = (db: Db, where: SQL | undefined) =>
  db
    .select(claimColumns)
    .from(users)
    .innerJoin(sessions, eq(sessions.userId, users.id))
    .leftJoin(memberships, and(eq(memberships.orgId, sessions.orgId), eq(memberships.userId, users.id)))
    .leftJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(where);

/** Whose refresh token it is: the API's own sign-in (null) or a grant to this client (auth/oauth-server/). */
const heldBy = (clientId: string | null) => (clientId === null ? isNull(sessions.clientId) : and(eq(sessions.clientId, clientId), clientEnabled(clientId)));
/** The client is not disabled: checked in the statement that writes, so a disable that lands meanwhile wins. */
export const clientEnabled = (clientId: string) =>
  sql`EXISTS (SELECT 1 FROM ${oauthClients} WHERE ${oauthClients.id} = ${clientId} AND ${oauthClients.disabledAt} IS NULL)`;
/** What a rotation or a reissue hands back of the session: what its next access token carries. */
export const issuingColumns = {
  id: sessions.id,
  expiresAt: sessions.expiresAt,
  amr: sessions.amr,
  authTime: sessions.authTime,
  clientId: sessions.clientId,
  scope: sessions.scope,
  resource: sessions.resource,
};

/**
 * Still refreshable as the session's limits beyond `live` stand: used since `idleSince` (the idle
 * timeout, REFRESH_IDLE_TTL) and signed in at or after the admins' cut-off for every session, if any
 * (auth/core/revocations.ts). Checked in the statement that rotates, so no extra round trip.
 */
export interface Limits {
  idleSince: Date;
  signedInSince: Date | null;
}
const withinLimits = ({ idleSince, signedInSince }: Limits) =>
  and(gt(sessions.lastUsedAt, idleSince), signedInSince ? gte(sessions.authTime, signedInSince) : undefined);

export interface Rotation extends Limits {
  clientId: string | null;
  resource?: string; // a grant's refresh naming its resource (RFC 8707): rotated only if it is the grant's
  requireVerified: boolean;
  oldHash: string;
  newHash: string;
  now: Date;
  accessExpiresAt: Date; // now + ACCESS_TOKEN_TTL; the row keeps it no later than the session's end
  rotatedBy: string; // fingerprint of the rotating client
}

/**
 * Rotates a refresh token in one batch (one implicit transaction, no interactive transaction on D1):
 * 1. the conditional UPDATE swaps the hash only if the old one is current, live and unexpired:
 *    of two concurrent refreshes with one token, exactly one matches;
 * 2. the old hash is remembered as rotated, only if step 1 happened;
 * 3. the user is read back for the new access token's claims.
 * Returns the user and session, or null when the old hash was not a live session's current hash.
 */
export async function rotateRefreshToken(
  db: Db,
  { oldHash, newHash, now, accessExpiresAt, rotatedBy, requireVerified, clientId, resource, ...limits }: Rotation,
) {
  const { updated, user } = await batch(db, {
    updated: db
      .update(sessions)
      .set({ refreshTokenHash: newHash, lastUsedAt: now, accessExpiresAt: extendAccess(accessExpiresAt) })
      .where(
        and(
          eq(sessions.refreshTokenHash, oldHash),
          heldBy(clientId),
          resource === undefined ? undefined : eq(sessions.resource, resource),
          live(now),
          withinLimits(limits),
          ownerMayHoldSession(requireVerified),
        ),
      )
      .returning(issuingColumns),
    remembered: db
      .insert(rotatedRefreshTokens)
      .select(
        db
          .select({
            tokenHash: sql`${oldHash}`.as("token_hash"),
            sessionId: sessions.id,
            rotatedAt: sql`${now.getTime()}`.as("rotated_at"),
            rotatedBy: sql`${rotatedBy}`.as("rotated_by"),
          })
          .from(sessions)
          .where(eq(sessions.refreshTokenHash, newHash)),
      )
      // A hash is rotated once; already there means step 1 did not happen (the successor was current already).
      .onConflictDoNothing(),
    user: ownerClaims(db, eq(sessions.refreshTokenHash, newHash)),
  });
  const session = updated[0];
  const owner = user[0];
  return session && owner ? { session, user: owner } : null;
}

/**
 * A new access token for a live session whose current refresh token hash is `currentHash`, without
 * rotating: the answer to a client that retries a refresh whose answer it lost. Same shape as a rotation.
 */
export async function reissueAccess(
  db: Db,
  {
    sessionId,
    currentHash,
    now,
    accessExpiresAt,
    requireVerified,
    clientId,
    ...limits
  }: { sessionId: string; currentHash: string; now: Date; accessExpiresAt: Date; requireVerified: boolean; clientId: string | null } & Limits,
) {
  const { updated, user } = await batch(db, {
    updated: db
      .update(sessions)
      .set({ lastUsedAt: now, accessExpiresAt: extendAccess(accessExpiresAt) })
      .where(
        and(
          eq(sessions.id, sessionId),
          eq(sessions.refreshTokenHash, currentHash),
          heldBy(clientId),
          live(now),
          withinLimits(limits),
          ownerMayHoldSession(requireVerified),
        ),
      )
      .returning(issuingColumns),
    user: ownerClaims(db, and(eq(sessions.id, sessionId), live(now))),
  });
  const session = updated[0];
  const owner = user[0];
  return session && owner ? { session, user: owner } : null;
}

/** The session a rotated (already used) refresh token belonged to, its owner, and who rotated it when. */
export async function findRotated(db: Db, tokenHash: string) {
  return db
    .select({
      sessionId: rotatedRefreshTokens.sessionId,
      userId: sessions.userId,
      rotatedAt: rotatedRefreshTokens.rotatedAt,
      rotatedBy: rotatedRefreshTokens.rotatedBy,
    })
    .from(rotatedRefreshTokens)
    .innerJoin(sessions, eq(sessions.id, rotatedRefreshTokens.sessionId))
    .where(eq(rotatedRefreshTokens.tokenHash, tokenHash))
    .get();
}
