import type { Config } from "../../config";
import { batch } from "../../db/batch";
import type { Db } from "../../db/client";
import { replaceSealed, sealedUnderOldKey } from "../../db/totp-seals";
import { keyId } from "../core/hkdf";
import { open, seal } from "../core/secrets";

/**
 * MFA key rotation (docs/crypto.md): while MFA_ENCRYPTION_KEY_PREVIOUS is set, each cron run re-seals
 * up to RESEAL_BATCH TOTP secrets still under it (or sealed before key ids, "v1") under the current
 * key. Each write is conditional on the value read, so a disable or a new setup meanwhile wins.
 * Secrets turned on within RETRY_GRACE are left for the next run: a retried enable re-derives its
 * recovery codes from the sealed value (auth/core/second-factor.ts). Pending setups are not moved:
 * they open with either key, and last minutes.
 */

export const RESEAL_BATCH = 500;

export interface Resealed {
  resealed: number;
  /** Values that open under neither key: their owner's codes fail until TOTP is set up again. */
  unopened: number;
}

export async function resealTotpSecrets(deps: { db: Db; config: Config }, now: Date): Promise<Resealed | undefined> {
  const { db, config } = deps;
  if (!config.MFA_ENCRYPTION_KEY || !config.MFA_ENCRYPTION_KEY_PREVIOUS) return undefined;
  const before = new Date(now.getTime() - config.RETRY_GRACE * 1000);
  const rows = await sealedUnderOldKey(db, await keyId(config.MFA_ENCRYPTION_KEY_PREVIOUS), before, RESEAL_BATCH);
  const writes: Record<string, ReturnType<typeof replaceSealed>> = {};
  let unopened = 0;
  for (const { id, sealed } of rows) {
    try {
      const plain = await open(config, id, sealed!);
      writes[id] = replaceSealed(db, id, sealed!, await seal(config.MFA_ENCRYPTION_KEY, id, plain));
    } catch {
      unopened++;
    }
  }
  const done = Object.keys(writes).length ? await batch(db, writes) : {};
  return { resealed: Object.values(done).filter((r) => r.length > 0).length, unopened };
}
