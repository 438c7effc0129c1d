import { RevocationIncomplete } from "./errors";
import { KV_KEYS, sessionKey, tokenKey, userKey } from "./kv-keys";

/**
 * Revocation list in KV (keys in auth/core/kv-keys.ts; the key ring's mirror is auth/core/signing-keys.ts's).
 *
 *   sid:<session id>  every access token of one session (logout, DELETE /sessions/:id, reuse
 *                     detection, the session cap)
 *   usr:<user id>     {"epoch": n, "kept": sid | null}: every access token of the user issued in an
 *                     epoch before n, except those of session `kept` (logout-all, password change).
 *                     One write ends any number of sessions: Workers allow 1,000 KV operations a request.
 *   jti:<token id>    one access token: the one an organization switch replaced (its session lives on).
 *
 * D1 is the record of what is revoked; these entries mirror it for the verify path, which never
 * touches D1. Writing them is idempotent, so a retry after a failed write repairs the mirror.
 * Entries expire when the last token they cover would have expired anyway (KV's floor is 60 s).
 * KV is eventually consistent: another location may accept a revoked token for up to ~60 s.
 */

export const KV_MIN_TTL = 60;

const ttl = (until: Date, now: number) => Math.max(KV_MIN_TTL, Math.ceil((until.getTime() - now) / 1000));

async function put(kv: KVNamespace, key: string, value: string, until: Date): Promise<void> {
  try {
    await kv.put(key, value, { expirationTtl: ttl(until, Date.now()) });
  } catch (err) {
    throw new RevocationIncomplete(err);
  }
}

/**
 * Revokes every access token of each session until the newest one expires. Each session row records
 * that time when it issues a token, so a later change of ACCESS_TOKEN_TTL cannot shorten a revocation.
 */
export async function revokeSessions(kv: KVNamespace, sessions: { id: string; accessExpiresAt: Date }[]): Promise<void> {
  await Promise.all(sessions.map((s) => put(kv, sessionKey(s.id), "1", s.accessExpiresAt)));
}

/** Revokes one access token (its `jti`) until it expires (`exp`, Unix seconds). */
export async function revokeAccessToken(kv: KVNamespace, token: { jti: string; exp: number }): Promise<void> {
  await put(kv, tokenKey(token.jti), "1", new Date(token.exp * 1000));
}

export interface EpochState {
  epoch: number; // tokens of earlier epochs are revoked...
  kept: string | null; // ...except this session's
  until: Date; // when the newest access token of the user expires
}

/** Mirrors a user's epoch (db/users.ts epochState) into KV. */
export async function revokeEpoch(kv: KVNamespace, userId: string, state: EpochState): Promise<void> {
  await put(kv, userKey(userId), JSON.stringify({ epoch: state.epoch, kept: state.kept }), state.until);
}

interface EpochEntry {
  epoch: number;
  kept: string | null;
}

/** One KV read (a bulk get) per verified request. */
export async function isRevoked(kv: KVNamespace, claims: { sub: string; sid: string; epoch: number; jti: string }): Promise<boolean> {
  const [sid, usr, jti] = [sessionKey(claims.sid), userKey(claims.sub), tokenKey(claims.jti)];
  const found = await kv.get<EpochEntry | 1>([sid, usr, jti], "json");
  if (found.get(sid) != null || found.get(jti) != null) return true;
  const user = found.get(usr);
  return typeof user === "object" && user !== null && claims.epoch < user.epoch && claims.sid !== user.kept;
}

/** For /health: KV answers. */
export async function pingKv(kv: KVNamespace): Promise<void> {
  await kv.get(KV_KEYS.healthProbe);
}
