/**
 * Revocation list in KV: the only module that touches KV.
 *
 *   jti:<token id>    one access token (logout)
 *   sid:<session id>  every access token of a session (logout, logout-all, password change, DELETE /sessions/:id)
 *
 * Entries expire when the last token they cover would have expired anyway (KV's floor is 60 s).
 * KV is eventually consistent: another location may accept a revoked token for up to ~60 s.
 */

export const KV_MIN_TTL = 60;

const ttl = (expiresAtSeconds: number) => Math.max(KV_MIN_TTL, Math.ceil(expiresAtSeconds - Date.now() / 1000));

/** Revokes one access token until its `exp` (Unix seconds). */
export async function revokeToken(kv: KVNamespace, jti: string, exp: number): Promise<void> {
  await kv.put(`jti:${jti}`, "1", { expirationTtl: ttl(exp) });
}

/**
 * Revokes every access token of each session until the newest one expires. Each session row records
 * that time when it issues a token, so a later change of ACCESS_TOKEN_TTL cannot shorten a revocation.
 */
export async function revokeSessions(kv: KVNamespace, sessions: { id: string; accessExpiresAt: Date }[]): Promise<void> {
  await Promise.all(sessions.map((s) => kv.put(`sid:${s.id}`, "1", { expirationTtl: ttl(s.accessExpiresAt.getTime() / 1000) })));
}

/** One KV read (a bulk get) per verified request. */
export async function isRevoked(kv: KVNamespace, claims: { jti: string; sid: string }): Promise<boolean> {
  const found = await kv.get([`jti:${claims.jti}`, `sid:${claims.sid}`]);
  for (const value of found.values()) if (value !== null) return true;
  return false;
}
