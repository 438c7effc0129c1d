import { and, eq, type SQL, sql } from "drizzle-orm";
import { insertAuditEvent } from "./db/audit";
import type { Db } from "./db/client";
import { auditEvents, sessions, users } from "./db/schema";
import { log } from "./log";

/**
 * Security events: one JSON log line each, and a row in D1 `audit_events` for GET /admin/audit.
 * Callers pass ids, names and counts only: never a password, hash, token or pepper.
 *
 * Where the row is written (the one rule):
 * - In the batch of the write it records (auditRow, auditRowIf, auditRowIfSession), conditional on
 *   that write happening, when the two must stand or fall together because a request can be lost and
 *   repeated: a sign-in or sign-up, a logout, a TOTP or passkey change, a failed check with the count
 *   it adds. Then logEvent once the batch succeeded.
 * - After the write (audit()), when the record follows a write that stands on its own and later steps
 *   (KV, mail) may still fail: revocations and resets, password and address changes, deletions, an
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
  | "email_verified"
  | "password_reset"
  | "email_change_requested"
  | "email_changed"
  | "account_deleted"
  | "admin_user_updated"
  | "mfa_challenge_issued"
  | "mfa_failed"
  | "totp_enabled"
  | "totp_disabled"
  | "recovery_code_used"
  | "passkey_added"
  | "passkey_removed"
  | "passkey_login_failed"
  | "passkey_counter_regressed"
  | "way_in_revoked"
  | "admin_refused";

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

const WARN: ReadonlySet<SecurityEvent> = new Set(["login_failed", "account_locked", "refresh_reuse_detected", "step_up_failed", "rate_limited"]);

function split(fields: AuditFields) {
  const { user_id = null, session_id = null, ...rest } = fields;
  const detail = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Record<string, string | number | boolean | null>;
  return { user_id, session_id, detail };
}

/** The event's log line. */
export function logEvent(ctx: AuditContext, event: SecurityEvent, fields: AuditFields = {}): void {
  const { user_id, session_id, detail } = split(fields);
  log(event, { request_id: ctx.requestId, ip: ctx.ip, user_id, session_id, ...detail }, WARN.has(event) ? "warn" : "info");
}

/**
 * The event's audit row as a statement, for the caller's batch: one D1 round trip for a write and
 * its record (a failing audit insert then fails the batch with it). Call logEvent once it succeeded.
 */
export function auditRow(ctx: AuditContext, event: SecurityEvent, fields: AuditFields = {}) {
  const { user_id, session_id, detail } = split(fields);
  return insertAuditEvent(ctx.db, {
    createdAt: new Date(),
    event,
    userId: user_id,
    sessionId: session_id,
    requestId: ctx.requestId ?? null,
    ip: ctx.ip ?? null,
    detail: Object.keys(detail).length ? detail : null,
  });
}

/** The row's values as a SELECT list, for an insert that happens only on a condition. */
function rowValues(ctx: AuditContext, event: SecurityEvent, fields: AuditFields) {
  const { user_id, session_id, detail } = split(fields);
  const value = (v: unknown, name: string) => sql`${v}`.as(name);
  return {
    id: sql`NULL`.as("id"),
    createdAt: value(Date.now(), "created_at"),
    event: value(event, "event"),
    userId: value(user_id, "user_id"),
    sessionId: value(session_id, "session_id"),
    requestId: value(ctx.requestId ?? null, "request_id"),
    ip: value(ctx.ip ?? null, "ip"),
    detail: value(Object.keys(detail).length ? JSON.stringify(detail) : null, "detail"),
  };
}

/** The same row, written only if the session `sessionId` exists by then (in the same batch). */
export function auditRowIfSession(ctx: AuditContext, event: SecurityEvent, fields: AuditFields & { session_id: string }) {
  return ctx.db.insert(auditEvents).select(
    ctx.db
      .select(rowValues(ctx, event, fields))
      .from(sessions)
      .where(eq(sessions.id, fields.session_id)),
  );
}

/**
 * The same row, written only if `condition` holds for the user `user_id` by then (in the same batch):
 * a change and its record commit together, or neither does.
 */
export function auditRowIf(ctx: AuditContext, event: SecurityEvent, fields: AuditFields & { user_id: string }, condition: SQL) {
  return ctx.db.insert(auditEvents).select(
    ctx.db
      .select(rowValues(ctx, event, fields))
      .from(users)
      .where(and(eq(users.id, fields.user_id), condition)),
  );
}

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
