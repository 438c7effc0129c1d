import { and, desc, eq, lt } from "drizzle-orm";
import type { Db } from "./client";
import { auditEvents } from "./schema";

export type NewAuditEvent = typeof auditEvents.$inferInsert;

export function insertAuditEvent(db: Db, row: NewAuditEvent) {
  return db.insert(auditEvents).values(row);
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
