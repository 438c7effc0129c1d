import { RevocationIncomplete } from "../core/errors";
import { sessionKey } from "../core/kv-keys";
import { revokeSessions } from "../core/revocations";

// Workers allow 1,000 KV operations a request; a bulk get reads up to 100 keys as one.
const MAX_KV_PUTS = 500;
const KV_GET_BATCH = 100;

/**
 * Ends grants in KV (sid: entries): only those whose access tokens may still be valid need one. A
 * client with more than MAX_KV_PUTS of them is done over several tries: each skips the entries a try
 * before wrote, writes at most MAX_KV_PUTS and answers 503 (RevocationIncomplete) while some are left,
 * so repeating the change finishes it. D1 is complete from the first try.
 */
export async function revokeGrantsInKv(kv: KVNamespace, revoked: { id: string; accessExpiresAt: Date }[], now: Date): Promise<void> {
  const pending = revoked.filter((s) => s.accessExpiresAt > now);
  if (pending.length <= MAX_KV_PUTS) return revokeSessions(kv, pending);
  const missing: typeof pending = [];
  try {
    for (let i = 0; i < pending.length; i += KV_GET_BATCH) {
      const chunk = pending.slice(i, i + KV_GET_BATCH);
      const found = await kv.get(chunk.map((s) => sessionKey(s.id)));
      missing.push(...chunk.filter((s) => found.get(sessionKey(s.id)) == null));
    }
  } catch (err) {
    throw new RevocationIncomplete(err);
  }
  await revokeSessions(kv, missing.slice(0, MAX_KV_PUTS));
  if (missing.length > MAX_KV_PUTS) throw new RevocationIncomplete(`${missing.length - MAX_KV_PUTS} grants left to write`);
}
