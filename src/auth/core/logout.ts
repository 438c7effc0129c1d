import { audit, auditRow, logEvent } from "../../audit";
import { endLinks } from "../../db/account-tokens";
import { batch } from "../../db/batch";
import { listSessions as listSessionRows, revokeSession, revokeUserSessions, type SessionCursor } from "../../db/sessions";
import { endSessionEpoch, epochState } from "../../db/users";
import type { Deps } from "../../deps";
import { publishEpoch } from "./epochs";
import { Refusal, sessionEnded, userGone } from "./errors";
import { hashRefreshToken, REFRESH_TOKEN_FORMAT } from "./refresh-tokens";
import { revokeSessions, sessionLimits } from "./revocations";
import { type StepUpAsk, type StepUpInput, stepUp } from "./step-up";
import type { AccessClaims } from "./tokens";

/**
 * Ending sessions: this one, by refresh token alone, every one, one of the caller's, and the list
 * to choose from. Each revocation is recorded in D1 before KV mirrors it, in a way a retry can
 * repeat (auth/core/revocations.ts). Knows nothing of HTTP.
 */

/**
 * Kills this session: every access token of it (sid, in KV) and its refresh token (D1). Repeatable:
 * a retry after a failed KV write finds the session again and completes the revocation.
 */
export async function logout(deps: Deps, claims: AccessClaims): Promise<void> {
  const event = { user_id: claims.sub, session_id: claims.sid };
  // The revocation and its audit row: one round trip.
  const { revoked } = await batch(deps.db, {
    revoked: revokeSession(deps.db, { id: claims.sid, userId: claims.sub }, new Date()),
    audited: auditRow(deps, "logout", event),
  });
  logEvent(deps, "logout", event);
  // No row (the user was deleted): this token still must stop working.
  await revokeSessions(deps.kv, revoked.length ? revoked : [{ id: claims.sid, accessExpiresAt: new Date(claims.exp * 1000) }]);
}

/** Logout by refresh token alone (cookie mode). Returns false when the token names no session (already over). */
export async function logoutByRefreshToken(deps: Deps, refreshToken: string): Promise<boolean> {
  if (!REFRESH_TOKEN_FORMAT.test(refreshToken)) return false;
  const revoked = await revokeSession(deps.db, { refreshTokenHash: await hashRefreshToken(refreshToken) }, new Date());
  const session = revoked[0];
  if (!session) return false;
  await revokeSessions(deps.kv, revoked);
  await audit(deps, "logout", { user_id: session.userId, session_id: session.id });
  return true;
}

/**
 * Every session of the user dies: refresh tokens in D1, access tokens by one epoch entry in KV. After
 * the step-up end_sessions (auth/core/ways-in.ts): a stolen access token alone cannot sign the owner out.
 */
export async function logoutAll(deps: Deps, ask: StepUpAsk<"end_sessions">, check: StepUpInput): Promise<number> {
  const { db } = deps;
  const { claims } = ask;
  try {
    await stepUp(deps, ask, check);
  } catch (err) {
    // This session is over already: maybe by this very request, whose KV write failed (a 503), sent
    // again. Completing KV's mirror of what D1 recorded ends nothing new and grants nothing.
    if (err instanceof Refusal && err.message === sessionEnded().message && (await republishEpoch(deps, claims))) return 0;
    throw err;
  }
  const now = new Date();
  const { revoked, epoch } = await batch(db, {
    epochEnded: endSessionEpoch(db, claims.sub),
    revoked: revokeUserSessions(db, claims.sub, now),
    // "Sign me out everywhere" also stops a pending address change, and the reset and "this was not
    // me" links out there: a mailbox alone cannot act on the account after it.
    linksEnded: endLinks(db, claims.sub, ["change_email", "reset_password", "revoke_way_in"], now),
    epoch: epochState(db, claims.sub),
  });
  const state = epoch[0];
  if (!state) throw userGone();
  await publishEpoch(deps, claims.sub, state, now);
  await audit(deps, "logout_all", { user_id: claims.sub, sessions_revoked: revoked.length });
  return revoked.length;
}

/** Writes the user's epoch to KV again if D1 has ended this token's epoch (a logout-all since it was issued); false otherwise. */
async function republishEpoch(deps: Deps, claims: AccessClaims): Promise<boolean> {
  const [state] = await epochState(deps.db, claims.sub);
  if (!state || state.epoch <= claims.epoch) return false;
  await publishEpoch(deps, claims.sub, state, new Date());
  return true;
}

export async function listSessions(deps: Deps, claims: AccessClaims, limit: number, after?: SessionCursor) {
  const now = new Date();
  // An idle session, or one signed in before an admin's cut-off, is over: not listed.
  const { idleSince, signedInSince } = await sessionLimits(deps, now);
  return listSessionRows(deps.replica(), claims.sub, now, { idleSince, signedInSince }, limit, after); // a list to look at: may lag a moment
}

/**
 * Revokes one of the caller's own sessions, with the apps' grants its approvals opened (a session
 * ended from elsewhere may be a stolen one); another user's id or an unknown one is not_found. Another
 * session than this one takes the step-up end_sessions; this one is free, as POST /logout is.
 */
export async function revokeOwnSession(deps: Deps, ask: StepUpAsk<"end_sessions">, sessionId: string, check: StepUpInput): Promise<void> {
  const { claims } = ask;
  if (sessionId !== claims.sid) await stepUp(deps, ask, check);
  const revoked = await revokeSession(deps.db, { id: sessionId, userId: claims.sub, withGrants: true }, new Date());
  if (!revoked[0]) throw new Refusal("not_found", "No such live session");
  await revokeSessions(deps.kv, revoked);
  await audit(deps, "session_revoked", { user_id: claims.sub, session_id: sessionId });
}
