import { getConfig } from "./config";
import { deleteOldLinks } from "./db/account-tokens";
import { deleteAuditEventsBefore } from "./db/audit";
import { getDb } from "./db/client";
import { deleteExpiredChallenges } from "./db/mfa";
import { deleteStaleChecks } from "./db/password-checks";
import { deleteDeadSessions } from "./db/sessions";
import { log } from "./log";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The daily cron ([triggers] in wrangler.toml): one rotated-hash row per refresh, one audit row
 * per security event and one row per mailed link must not pile up forever.
 */
export async function housekeeping(env: Env, now = new Date()) {
  const db = getDb(env.DB);
  // Dead sessions are kept a day for investigation, then dropped with their rotation history.
  const sessions = await deleteDeadSessions(db, now, DAY_MS);
  const auditEvents = await deleteAuditEventsBefore(db, new Date(now.getTime() - getConfig(env).AUDIT_RETENTION_DAYS * DAY_MS));
  // Password checks whose worker died stopped counting after seconds; their rows go here.
  const checks = await deleteStaleChecks(db, new Date(now.getTime() - DAY_MS));
  // Login second steps and WebAuthn challenges live minutes; kept a day past that, then dropped.
  const challenges = await deleteExpiredChallenges(db, new Date(now.getTime() - DAY_MS));
  // Mailed links, used or expired over a day ago (with the former addresses they were sent to).
  const links = await deleteOldLinks(db, new Date(now.getTime() - DAY_MS));
  log("housekeeping", {
    sessions_deleted: sessions,
    audit_events_deleted: auditEvents,
    password_checks_deleted: checks,
    challenges_deleted: challenges,
    links_deleted: links,
  });
  return { sessions, auditEvents, checks, challenges, links };
}
