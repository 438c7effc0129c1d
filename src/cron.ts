import { getDb } from "./db/client";
import { deleteDeadSessions } from "./db/sessions";
import { log } from "./log";

// Dead sessions are kept a day for investigation, then dropped with their rotation history.
const KEEP_DEAD_MS = 24 * 60 * 60 * 1000;

/** The daily cron ([triggers] in wrangler.toml): one rotated-hash row per refresh must not pile up. */
export async function purgeDeadSessions(env: Env, now = new Date()): Promise<number> {
  const deleted = await deleteDeadSessions(getDb(env.DB), now, KEEP_DEAD_MS);
  log("sessions_purged", { deleted });
  return deleted;
}
