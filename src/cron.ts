import { audit } from "./audit";
import { maintainRing } from "./auth/keys/rotation";
import { applyDueHolds } from "./auth/mail/recovery-holds";
import { resealTotpSecrets } from "./auth/totp/reseal";
import { getConfig } from "./config";
import { deleteOldLinks } from "./db/account-tokens";
import { deleteOldApiKeys } from "./db/api-keys";
import { deleteAuditEventsBefore } from "./db/audit";
import { getDb, getReplicaDb } from "./db/client";
import { deleteIdleGuests } from "./db/guests";
import { deleteExpiredFlows } from "./db/identities";
import { deleteOldInvitations } from "./db/invitations";
import { deleteOldMailSends } from "./db/mail-sends";
import { deleteExpiredMailSignIns } from "./db/mail-sign-ins";
import { deleteExpiredChallenges } from "./db/mfa";
import { deleteLapsedDocumentClients, deleteLapsedRegistrations } from "./db/oauth-clients";
import { deleteExpiredRequests } from "./db/oauth-requests";
import { deleteEmptyOrganizations } from "./db/organizations";
import { deleteStaleChecks } from "./db/password-checks";
import { deleteDeadSessions } from "./db/sessions";
import { deleteUnverifiedAccounts } from "./db/users";
import { log } from "./log";

const DAY_MS = 24 * 60 * 60 * 1000;
/** API keys revoked or expired are kept this long (listed, for investigation), then removed. */
export const DEAD_KEY_DAYS = 30;
/** How long an invitation is kept once accepted, revoked or expired (docs/storage.md). */
export const INVITATION_KEPT_DAYS = 7;

/** The frequent trigger in wrangler.toml [triggers]: the signing key ring only (every other trigger does housekeeping too). */
export const FREQUENT = "*/10 * * * *";

/**
 * The daily cron ([triggers] in wrangler.toml): every table a caller can grow has its cleaning rule
 * here (docs/storage.md lists them). Short-lived rows are kept a day past their end, for investigation.
 */
export async function housekeeping(env: Env, now = new Date()) {
  const db = getDb(env.DB);
  const config = getConfig(env);
  const dayAgo = new Date(now.getTime() - DAY_MS);
  // Dead sessions are kept a day for investigation, then dropped with their rotation history.
  const sessions = await deleteDeadSessions(db, now, DAY_MS);
  const auditEvents = await deleteAuditEventsBefore(db, new Date(now.getTime() - config.AUDIT_RETENTION_DAYS * DAY_MS));
  // Password checks whose worker died stopped counting after seconds; their rows go here.
  const checks = await deleteStaleChecks(db, dayAgo);
  // Login second steps and WebAuthn challenges live minutes; kept a day past that, then dropped.
  const challenges = await deleteExpiredChallenges(db, dayAgo);
  // Mailed links, used or expired over a day ago (with the former addresses they were sent to).
  const links = await deleteOldLinks(db, dayAgo);
  // Social sign-in flows live 10 minutes (their one-time codes one more); kept a day past that.
  const flows = await deleteExpiredFlows(db, dayAgo);
  // Authorization requests live OAUTH_REQUEST_TTL (their codes a minute past the decision); kept a day past that.
  const oauthRequests = await deleteExpiredRequests(db, dayAgo);
  // Mail counted against a recipient's budget stops counting after a day; kept a day more.
  const mailSends = await deleteOldMailSends(db, new Date(now.getTime() - 2 * DAY_MS));
  // Accounts that signed up verify-first and never proved the address: the address is free again.
  const unverifiedAccounts = config.REQUIRE_VERIFIED_EMAIL === "on" ? await deleteUnverifiedAccounts(db, now) : 0;
  if (unverifiedAccounts) await audit({ db }, "unverified_accounts_removed", { count: unverifiedAccounts });
  // Guests no session of which was used for GUEST_IDLE_TTL (whatever GUESTS says now): with their sessions.
  const idleGuests = await deleteIdleGuests(db, new Date(now.getTime() - config.GUEST_IDLE_TTL * 1000));
  if (idleGuests) await audit({ db }, "idle_guests_removed", { count: idleGuests });
  // Apps that registered themselves (RFC 7591) and never got a token: their registration lapsed.
  // and clients known by a metadata document whose cache lapsed, that nothing refers to any more.
  const lapsedClients = (await deleteLapsedRegistrations(db, now)) + (await deleteLapsedDocumentClients(db, dayAgo));
  // API keys revoked or expired DEAD_KEY_DAYS ago: shown in lists until then, refused at exchange from the start.
  const apiKeys = await deleteOldApiKeys(db, new Date(now.getTime() - DEAD_KEY_DAYS * DAY_MS));
  // Invitations accepted, revoked or expired: kept a week (what an inviter or an admin investigating
  // may ask about), then dropped. Pending ones stay until they expire.
  const invitations = await deleteOldInvitations(db, new Date(now.getTime() - INVITATION_KEPT_DAYS * DAY_MS));
  // Organizations whose last member deleted their account: nobody can reach them any more.
  const emptyOrganizations = await deleteEmptyOrganizations(db, dayAgo);
  // Mail sign-in messages live MAIL_SIGN_IN_TTL (at most 10 minutes): past it, used or not, they prove nothing.
  const mailSignIns = await deleteExpiredMailSignIns(db, now);
  const removed = {
    sessions,
    auditEvents,
    checks,
    challenges,
    links,
    flows,
    oauthRequests,
    mailSends,
    unverifiedAccounts,
    idleGuests,
    lapsedClients,
    apiKeys,
    invitations,
    emptyOrganizations,
    mailSignIns,
  };
  log("housekeeping", {
    sessions_deleted: sessions,
    audit_events_deleted: auditEvents,
    password_checks_deleted: checks,
    challenges_deleted: challenges,
    links_deleted: links,
    oauth_flows_deleted: flows,
    oauth_requests_deleted: oauthRequests,
    mail_sends_deleted: mailSends,
    unverified_accounts_deleted: unverifiedAccounts,
    idle_guests_deleted: idleGuests,
    lapsed_clients_deleted: lapsedClients,
    api_keys_deleted: apiKeys,
    invitations_deleted: invitations,
    empty_organizations_deleted: emptyOrganizations,
    mail_sign_ins_deleted: mailSignIns,
  });
  return removed;
}

/**
 * Every cron run, when SIGNING_KEYS is rotating: turns the ring when the current key is due, retires
 * what has been kept long enough, and repairs a mirror a failed run left behind (auth/keys/rotation.ts).
 * Runs often (every 10 minutes by default) so the windows it waits out are not stretched by a day.
 */
export async function turnSigningKeys(env: Env, now = new Date()) {
  const config = getConfig(env);
  if (config.SIGNING_KEYS !== "rotating") return undefined;
  try {
    return await maintainRing({ config, db: getDb(env.DB), kv: env.REVOKED }, { scheduled: true }, now);
  } catch (err) {
    // The next run tries again; tokens keep being signed and verified with the ring as it stands.
    log("key_rotation_failed", { error: (err as Error).name, message: (err as Error).message }, "error");
    return undefined;
  }
}

/**
 * Every cron run: applies held recoveries whose wait is over (auth/mail/recovery-holds.ts), so one takes
 * effect within the frequent trigger's period (10 minutes) of its announced time.
 */
export async function applyRecoveries(env: Env, now = new Date()) {
  const deps = { db: getDb(env.DB), replica: () => getReplicaDb(env.DB), kv: env.REVOKED, config: getConfig(env), mailer: env.EMAIL };
  try {
    return await applyDueHolds(deps, now);
  } catch (err) {
    // The next run tries again: a due hold stays until it is applied or cancelled.
    log("recovery_apply_failed", { error: (err as Error).name, message: (err as Error).message }, "error");
    return undefined;
  }
}

/**
 * Every cron run, while MFA_ENCRYPTION_KEY_PREVIOUS is set: re-seals a bounded batch of TOTP secrets
 * under the current key (auth/totp/reseal.ts). A run that finds none left says the previous key can go.
 */
export async function resealSecrets(env: Env, now = new Date()) {
  try {
    const done = await resealTotpSecrets({ db: getDb(env.DB), config: getConfig(env) }, now);
    if (done) log("totp_resealed", { ...done, previous_key_in_use: done.resealed + done.unopened > 0 }, done.unopened ? "warn" : "info");
    return done;
  } catch (err) {
    log("totp_reseal_failed", { error: (err as Error).name, message: (err as Error).message }, "error");
    return undefined;
  }
}
