/**
 * Every KV key of the Worker (the REVOKED binding), in one place. docs/storage.md describes each:
 * test/node/storage-doc.test.ts holds this list and the page to each other, and every workerd test
 * file ends by checking that each key it left in KV is one of these (test/setup.ts).
 *
 *   sid:<session id>  a revoked session (auth/core/revocations.ts); expires with its last access token
 *   usr:<user id>     a user's session epoch (auth/core/revocations.ts); expires with their last access token
 *   jti:<token id>    one revoked access token (an organization switch replaces it); expires with it
 *   cutoff            the admins' cut-off for every session (auth/core/revocations.ts); expires with the last session it ends
 *   keyring           the signing key ring's mirror (auth/core/signing-keys.ts); one entry, rewritten
 *   health:probe      read by GET /health, never written
 */
export const KV_KEYS = {
  session: "sid:",
  user: "usr:",
  token: "jti:",
  cutoff: "cutoff",
  keyring: "keyring",
  healthProbe: "health:probe",
} as const;

/** Prefixes take an id after them; the other keys are used as they are. */
export const KV_PREFIXES: readonly string[] = [KV_KEYS.session, KV_KEYS.user, KV_KEYS.token];

export const sessionKey = (sessionId: string) => `${KV_KEYS.session}${sessionId}`;
export const userKey = (userId: string) => `${KV_KEYS.user}${userId}`;
export const tokenKey = (jti: string) => `${KV_KEYS.token}${jti}`;

/** Whether `key` is one of the Worker's keys (a prefix with an id after it, or a whole key). */
export const isKnownKvKey = (key: string) =>
  KV_PREFIXES.some((p) => key.startsWith(p) && key.length > p.length) || Object.values(KV_KEYS).some((k) => !KV_PREFIXES.includes(k) && k === key);
