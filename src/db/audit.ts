import { and, desc, eq, lt, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { auditEvents, sessions, users } from "./schema";

export type NewAuditEvent = typeof auditEvents.$inferInsert;

export function insertAuditEvent(db: Db, row: NewAuditEvent) {
  return db.insert(auditEvents).values(row);
}

/** The row's values as a SELECT list, for an insert that happens only on a condition. */
function selected(row: NewAuditEvent) {
  const value = (v: unknown, name: string) => sql`${v}`.as(name);
  return {
    id: sql`NULL`.as("id"),
    createdAt: value(row.createdAt.getTime(), "created_at"),
    event: value(row.event, "event"),
    userId: value(row.userId ?? null, "user_id"),
    sessionId: value(row.sessionId ?? null, "session_id"),
    requestId: value(row.requestId ?? null, "request_id"),
    ip: value(row.ip ?? null, "ip"),
    detail: value(row.detail ? JSON.stringify(row.detail) : null, "detail"),
  };
}

/**
 * The rows, written only if the session `sessionId` exists by then (in the same batch): one statement
 * for all of them (a sign-in's own row and, say, the recovery code it spent).
 */
export function insertAuditEventIfSession(db: Db, rows: [NewAuditEvent, ...NewAuditEvent[]], sessionId: string) {
  const each = rows.map((row) => db.select(selected(row)).from(sessions).where(eq(sessions.id, sessionId)).getSQL());
  return db.insert(auditEvents).select(sql.join(each, sql` UNION ALL `));
}

/**
 * The row for the session whose current refresh token hash is `refreshTokenHash`, with that session's
 * user and id, only if it was revoked at `revokedAt` (by an earlier statement of the same batch).
 */
export function insertAuditEventIfRevoked(db: Db, row: NewAuditEvent, refreshTokenHash: string, revokedAt: Date) {
  return db.insert(auditEvents).select(
    db
      .select({ ...selected(row), userId: sql`${sessions.userId}`.as("user_id"), sessionId: sql`${sessions.id}`.as("session_id") })
      .from(sessions)
      .where(and(eq(sessions.refreshTokenHash, refreshTokenHash), eq(sessions.revokedAt, revokedAt))),
  );
}

/** The row, written only if `condition` holds for the user `userId` by then (in the same batch). */
export function insertAuditEventIfUser(db: Db, row: NewAuditEvent, userId: string, condition: SQL) {
  return db.insert(auditEvents).select(
    db
      .select(selected(row))
      .from(users)
      .where(and(eq(users.id, userId), condition)),
  );
}

/** Newest first, keyset-paginated on id; optionally one user's events only. */
export async function listAuditEvents(db: Db, limit: number, filter: { userId?: string; beforeId?: number }) {
  return db
    .select()
    .from(auditEvents)
    .where(
      and(filter.userId ? eq(auditEvents.userId, filter.userId) : undefined, filter.beforeId !== undefined ? lt(auditEvents.id, filter.beforeId) : undefined),
    )
    .orderBy(desc(auditEvents.id))
    .limit(limit)
    .all();
}

export async function deleteAuditEventsBefore(db: Db, before: Date): Promise<number> {
  const gone = await db.delete(auditEvents).where(lt(auditEvents.createdAt, before)).returning({ id: auditEvents.id });
  return gone.length;
}
