import type { Config } from "../../config";
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

/** The admins' cut-off for every session: sessions signed in before `before` (Unix seconds) are over. */
interface CutoffEntry {
  before: number;
}
const cutoffOf = (v: unknown) => (typeof v === "object" && v !== null && Number.isSafeInteger((v as CutoffEntry).before) ? (v as CutoffEntry).before : null);

/**
 * Writes the cut-off (`before`: a sign-in at or after it survives) until `until`, when the last
 * session it ends would have expired anyway. A later cut-off replaces an earlier one: it covers it.
 */
export async function revokeAllBefore(kv: KVNamespace, before: number, until: Date): Promise<void> {
  await put(kv, KV_KEYS.cutoff, JSON.stringify({ before } satisfies CutoffEntry), until);
}

/** The cut-off for the refresh's statement: sessions must have signed in at or after it (null: none). */
export async function signedInSince(kv: KVNamespace): Promise<Date | null> {
  const before = cutoffOf(await kv.get(KV_KEYS.cutoff, "json"));
  return before === null ? null : new Date(before * 1000);
}

/**
 * What a refresh must meet beyond the session's absolute end (db/session-rotation.ts Limits): used
 * within REFRESH_IDLE_TTL (the idle timeout) and signed in since the admins' cut-off, if one is set
 * (one KV read, no D1 round trip).
 */
export async function sessionLimits(deps: { kv: KVNamespace; config: Pick<Config, "REFRESH_IDLE_TTL"> }, now: Date) {
  return { idleSince: new Date(now.getTime() - deps.config.REFRESH_IDLE_TTL * 1000), signedInSince: await signedInSince(deps.kv) };
}

/** One KV read (a bulk get) per verified request. */
export async function isRevoked(
  kv: KVNamespace,
  claims: { sub: string; sid: string; epoch: number; jti: string; iat: number; auth_time?: number },
): Promise<boolean> {
  const [sid, usr, jti] = [sessionKey(claims.sid), userKey(claims.sub), tokenKey(claims.jti)];
  const found = await kv.get<EpochEntry | CutoffEntry | 1>([sid, usr, jti, KV_KEYS.cutoff], "json");
  if (found.get(sid) != null || found.get(jti) != null) return true;
  // A token without auth_time (issued before it was carried) goes by when it was issued: no later than its sign-in.
  const before = cutoffOf(found.get(KV_KEYS.cutoff));
  if (before !== null && (claims.auth_time ?? claims.iat) < before) return true;
  const user = found.get(usr) as EpochEntry | 1 | null | undefined;
  return typeof user === "object" && user !== null && claims.epoch < user.epoch && claims.sid !== user.kept;
}

/** For /health: KV answers. */
export async function pingKv(kv: KVNamespace): Promise<void> {
  await kv.get(KV_KEYS.healthProbe);
}
