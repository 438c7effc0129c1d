import type { SQL } from "drizzle-orm";
import { insertAuditEvent, insertAuditEventIfSession, insertAuditEventIfUser, type NewAuditEvent } from "./db/audit";
import type { Db } from "./db/client";
import { log } from "./log";

/**
 * Security events: one JSON log line each, and a row in D1 `audit_events` for GET /admin/audit.
 * Callers pass ids, names and counts only: never a password, hash, token or pepper.
 *
 * Where the row is written (the one rule):
 * - In the batch of the write it records (auditRow, auditRowIf, auditRowIfSession), conditional on
 *   that write happening, when the two must stand or fall together because a request can be lost and
 *   repeated: a sign-in or sign-up, a logout by access token, turning TOTP on or off, adding a
 *   passkey, a failed check with the count it adds. Then logEvent once the batch succeeded.
 * - After the write (audit()), when the record follows a write that stands on its own and later steps
 *   (KV, mail) may still fail: revocations (a logout by cookie, reuse detection, the session cap,
 *   logout everywhere) and resets, password and address changes, removing a passkey, deletions, an
 *   admin's change, and refusals that change nothing (rate limits, mail failures). A failed audit
 *   write is then logged and never fails the request: the log line holds the event already.
 */

export type SecurityEvent =
  | "register"
  | "login_succeeded"
  | "login_failed"
  | "account_locked"
  | "refresh_reuse_detected"
  | "refresh_race"
  | "logout"
  | "logout_all"
  | "password_changed"
  | "step_up_failed"
  | "session_revoked"
  | "rate_limited"
  | "mail_failed"
  | "mail_refused"
  | "email_verified"
  | "password_reset"
  | "email_change_requested"
  | "email_changed"
  | "account_deleted"
  | "unverified_accounts_removed"
  | "guest_upgraded"
  | "idle_guests_removed"
  | "admin_user_updated"
  | "admin_sessions_ended"
  | "all_sessions_ended"
  | "mfa_challenge_issued"
  | "mfa_failed"
  | "mfa_code_reused"
  | "totp_enabled"
  | "totp_disabled"
  | "recovery_code_used"
  | "passkey_added"
  | "passkey_removed"
  | "passkey_login_failed"
  | "passkey_counter_regressed"
  | "way_in_revoked"
  | "username_changed"
  | "recovery_held"
  | "recovery_cancelled"
  | "recovery_applied"
  | "identity_linked"
  | "identity_unlinked"
  | "social_sign_in_failed"
  | "admin_refused"
  | "signing_key_created"
  | "signing_key_rotated"
  | "signing_key_retired"
  | "oauth_request_approved"
  | "oauth_request_denied"
  | "oauth_grant_issued"
  | "oauth_code_reused"
  | "oauth_grant_revoked"
  | "oauth_client_created"
  | "oauth_client_updated"
  | "oauth_client_deleted"
  | "oauth_app_disconnected"
  | "oauth_client_registered"
  | "org_created"
  | "org_updated"
  | "org_deleted"
  | "member_role_changed"
  | "member_removed"
  | "member_left"
  | "org_transferred"
  | "org_switched"
  | "api_key_created"
  | "api_key_revoked"
  | "api_key_exchange_refused" // logged only, never stored: a flood of wrong keys must not become D1 writes
  | "invitation_created"
  | "invitation_revoked"
  | "invitation_accepted";

export interface AuditContext {
  db: Db;
  requestId?: string;
  ip?: string;
}

export interface AuditFields {
  user_id?: string | null;
  session_id?: string | null;
  [detail: string]: string | number | boolean | null | undefined;
}

const WARN: ReadonlySet<SecurityEvent> = new Set([
  "login_failed",
  "account_locked",
  "refresh_reuse_detected",
  "step_up_failed",
  "rate_limited",
  "mail_refused",
  "social_sign_in_failed",
  "oauth_code_reused",
  "api_key_exchange_refused",
]);

function split(fields: AuditFields) {
  const { user_id = null, session_id = null, ...rest } = fields;
  const detail = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Record<string, string | number | boolean | null>;
  return { user_id, session_id, detail };
}

/** The event's log line. */
export function logEvent(ctx: Pick<AuditContext, "requestId" | "ip">, event: SecurityEvent, fields: AuditFields = {}): void {
  const { user_id, session_id, detail } = split(fields);
  log(event, { request_id: ctx.requestId, ip: ctx.ip, user_id, session_id, ...detail }, WARN.has(event) ? "warn" : "info");
}

/** The event's row as the audit_events table takes it. */
function rowOf(ctx: AuditContext, event: SecurityEvent, fields: AuditFields): NewAuditEvent {
  const { user_id, session_id, detail } = split(fields);
  return {
    createdAt: new Date(),
    event,
    userId: user_id,
    sessionId: session_id,
    requestId: ctx.requestId ?? null,
    ip: ctx.ip ?? null,
    detail: Object.keys(detail).length ? detail : null,
  };
}

/**
 * The event's audit row as a statement, for the caller's batch: one D1 round trip for a write and
 * its record (a failing audit insert then fails the batch with it). Call logEvent once it succeeded.
 */
export const auditRow = (ctx: AuditContext, event: SecurityEvent, fields: AuditFields = {}) => insertAuditEvent(ctx.db, rowOf(ctx, event, fields));

/**
 * The same row, written only if the session `session_id` exists by then (in the same batch), with
 * `also` (events of the same sign-in, recorded with it in the same statement).
 */
export const auditRowIfSession = (
  ctx: AuditContext,
  event: SecurityEvent,
  fields: AuditFields & { session_id: string },
  also: { event: SecurityEvent; fields: AuditFields }[] = [],
) => insertAuditEventIfSession(ctx.db, [rowOf(ctx, event, fields), ...also.map((a) => rowOf(ctx, a.event, a.fields))], fields.session_id);

/**
 * The same row, written only if `condition` holds for the user `user_id` by then (in the same batch):
 * a change and its record commit together, or neither does.
 */
export const auditRowIf = (ctx: AuditContext, event: SecurityEvent, fields: AuditFields & { user_id: string }, condition: SQL) =>
  insertAuditEventIfUser(ctx.db, rowOf(ctx, event, fields), fields.user_id, condition);

/** Logs the event and, unless `store` is false, keeps it in D1. */
export async function audit(ctx: AuditContext, event: SecurityEvent, fields: AuditFields = {}, { store = true } = {}): Promise<void> {
  logEvent(ctx, event, fields);
  if (!store) return;
  try {
    await auditRow(ctx, event, fields);
  } catch (err) {
    // The log line above already holds the event; a failed audit write must not fail the request.
    log("audit_write_failed", { request_id: ctx.requestId, event, message: (err as Error).message }, "error");
  }
}
