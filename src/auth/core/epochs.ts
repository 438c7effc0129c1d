import { epochState } from "../../db/users";
import type { Deps } from "../../deps";
import { log } from "../../log";
import { revokeEpoch } from "./revocations";

/**
 * Mass revocations as KV sees them: a user's epoch (every access token of older epochs is dead,
 * auth/core/revocations.ts) mirrored from D1, and KV writes repeated after the answer when nobody else
 * would repeat them.
 */

type EpochRow = { epoch: number; kept: string | null; until: number | null };

/**
 * Mirrors the user's epoch from D1 into KV (one write, however many sessions it ends). Two mass
 * revocations at once may land in KV in the wrong order, so D1 is read again after the write and a
 * newer state is written on top.
 */
export async function publishEpoch(deps: Deps, userId: string, state: EpochRow, now: Date): Promise<void> {
  for (let current: EpochRow | undefined = state, i = 0; current && i < 3; i++) {
    const written: EpochRow = current;
    await revokeEpoch(deps.kv, userId, { epoch: written.epoch, kept: written.kept, until: new Date(Math.max(written.until ?? 0, now.getTime())) });
    [current] = await epochState(deps.db, userId);
    if (current && current.epoch === written.epoch && current.kept === written.kept) return;
  }
}

/**
 * A revocation whose KV write failed and that nobody will retry (a thief's replay, the session cap):
 * keep trying after the answer, within the 30 s that waitUntil allows. Writing it again is harmless.
 */
export function retryAfterAnswer(deps: Deps, write: () => Promise<void>) {
  deps.defer?.(
    (async () => {
      for (const wait of [1_000, 4_000, 15_000]) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        try {
          await write();
          return log("revocation_repaired", { request_id: deps.requestId });
        } catch {
          // try again
        }
      }
      log("revocation_incomplete", { request_id: deps.requestId, message: "gave up retrying the KV write" }, "error");
    })(),
  );
}
