import { logEvent } from "../../audit";
import { insertAuditEventIfRevoked } from "../../db/audit";
import { revokeSession, sessionExists } from "../../db/sessions";
import type { Deps } from "../../deps";
import { retryAfterAnswer } from "./epochs";
import { hashRefreshToken, REFRESH_TOKEN_FORMAT } from "./refresh-tokens";
import { revokeSessions } from "./revocations";

/**
 * A cookie-mode sign-in replaces the browser's refresh cookie: the session that cookie named ends with
 * the sign-in (ASVS 7.2.4), in the sign-in's own batch (no round trip of its own) and only if the new
 * session was written, so a refused sign-in signs nobody out. Whoever's session it was: the browser
 * will not hold its token any more. Knows nothing of HTTP (deps.replacing is set by the sign-in routes).
 */

/** The statements for the sign-in's batch: none unless the request carried a refresh cookie. */
export async function endReplaced(deps: Deps, newSessionId: string, now: Date) {
  const token = deps.replacing;
  if (!token || !REFRESH_TOKEN_FORMAT.test(token)) return {};
  const { db } = deps;
  const hash = await hashRefreshToken(token);
  return {
    replacedEnded: revokeSession(db, { refreshTokenHash: hash }, now, sessionExists(db, newSessionId)),
    // Recorded only for a session this batch ended (one ended before keeps its own record).
    replacedAudited: insertAuditEventIfRevoked(
      db,
      {
        createdAt: now,
        event: "session_revoked",
        requestId: deps.requestId ?? null,
        ip: deps.ip ?? null,
        detail: { reason: "replaced_by_sign_in", by: newSessionId },
      },
      hash,
      now,
    ),
  };
}

/** After the batch: the ended session's access tokens revoked in KV. A failed write must not fail the sign-in: retried after the answer. */
export async function afterReplaced(deps: Deps, ended: { id: string; userId: string; accessExpiresAt: Date }[] | undefined) {
  if (!ended?.length) return;
  for (const s of ended) logEvent(deps, "session_revoked", { user_id: s.userId, session_id: s.id, reason: "replaced_by_sign_in" });
  try {
    await revokeSessions(deps.kv, ended);
  } catch {
    retryAfterAnswer(deps, () => revokeSessions(deps.kv, ended));
  }
}
