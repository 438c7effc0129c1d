import { audit } from "../../audit";
import { findRotated, reissueAccess, rotateRefreshToken } from "../../db/session-rotation";
import { revokeSession } from "../../db/sessions";
import type { Deps } from "../../deps";
import { log } from "../../log";
import { retryAfterAnswer } from "./epochs";
import { Refusal } from "./errors";
import { hashRefreshToken, REFRESH_TOKEN_FORMAT, successorOf } from "./refresh-tokens";
import { revokeSessions, sessionLimits } from "./revocations";
import { accessUntil, clientFingerprint, type Issued, issue } from "./sign-in";

/** Refresh-token rotation with reuse detection. Knows nothing of HTTP. */

const deadRefreshToken = () => new Refusal("invalid_token", "The refresh token is invalid, expired or already used");

/** A rotation's outcome: the session and owner its next access token is for, and the successor token. */
export type Rotated = NonNullable<Awaited<ReturnType<typeof rotateRefreshToken>>> & { successor: string; now: Date };

/**
 * Single-use rotation. The successor of a token is derived from it (auth/core/refresh-tokens.ts), so:
 * - the same client (IP and User-Agent) presenting a rotated token again within REFRESH_REUSE_GRACE
 *   seconds (a retry whose answer was lost, or a second tab) gets the same successor and a fresh
 *   access token, as long as that successor is still the session's current token;
 * - any other replay of a rotated token is theft (RFC 9700 section 4.14.2): the whole session dies.
 */
export async function refresh(deps: Deps, refreshToken: string): Promise<Issued> {
  const r = await rotate(deps, refreshToken, null);
  return issue(deps, r.user, r.session, r.now, r.successor);
}

/**
 * The rotation itself, for the API's own sessions (`clientId` null) and for an app's grant
 * (auth/oauth-server/refresh-grant.ts): a token is rotated only by the holder it was issued to (and,
 * for a grant's refresh naming a resource, only if that is the grant's).
 */
export async function rotate(deps: Deps, refreshToken: string, clientId: string | null, resource?: string): Promise<Rotated> {
  const { db, kv, config } = deps;
  if (!REFRESH_TOKEN_FORMAT.test(refreshToken)) throw deadRefreshToken();
  const now = new Date();
  const oldHash = await hashRefreshToken(refreshToken);
  const successor = await successorOf(config, refreshToken);
  const successorHash = await hashRefreshToken(successor);
  const fingerprint = await clientFingerprint(deps);
  const accessExpiresAt = accessUntil(config, now);
  const requireVerified = config.REQUIRE_VERIFIED_EMAIL === "on";
  const limits = await sessionLimits(deps, now);
  const rotated = await rotateRefreshToken(db, {
    ...limits,
    oldHash,
    newHash: successorHash,
    now,
    accessExpiresAt,
    rotatedBy: fingerprint,
    requireVerified,
    clientId,
    resource,
  });
  if (rotated) return { ...rotated, successor, now };

  const used = await findRotated(db, oldHash);
  if (!used) throw deadRefreshToken();
  const sameClient = used.rotatedBy === fingerprint && now.getTime() - used.rotatedAt.getTime() <= config.REFRESH_REUSE_GRACE * 1000;
  if (!sameClient) {
    // A thief may have approved apps with the stolen session: their grants end with it.
    const revoked = await revokeSession(db, { id: used.sessionId, withGrants: true }, now);
    // Audited before KV is written, and the write retried after the answer if it fails: a thief does
    // not retry, so neither may depend on that.
    await audit(deps, "refresh_reuse_detected", { session_id: used.sessionId, user_id: used.userId });
    try {
      await revokeSessions(kv, revoked);
    } catch (err) {
      retryAfterAnswer(deps, () => revokeSessions(kv, revoked));
      throw err;
    }
    throw deadRefreshToken();
  }
  const again = await reissueAccess(db, { ...limits, sessionId: used.sessionId, currentHash: successorHash, now, accessExpiresAt, requireVerified, clientId });
  if (again) {
    log("refresh_retried", { request_id: deps.requestId, user_id: used.userId, session_id: used.sessionId });
    return { ...again, successor, now };
  }
  // The successor was rotated on already: this client holds a newer token than the one it sent.
  await audit(deps, "refresh_race", { session_id: used.sessionId, user_id: used.userId });
  throw deadRefreshToken();
}
