import { and, eq, gt, lt, sql } from "drizzle-orm";
import type { Db } from "./client";
import { passwordChecks } from "./schema";

/** Checks of `subject` started within `staleMs` and not finished: the ones in flight. */
export const checksInFlight = (subject: string, now: Date, staleMs: number) =>
  sql<number>`(SELECT count(*) FROM ${passwordChecks} WHERE ${and(eq(passwordChecks.subject, subject), gt(passwordChecks.startedAt, new Date(now.getTime() - staleMs)))})`;

/** The columns of a new check row, for an INSERT ... SELECT that adds it only when its gate allows. */
export const newCheck = (id: string, subject: string, now: Date) => ({
  id: sql`${id}`.as("id"),
  subject: sql`${subject}`.as("subject"),
  startedAt: sql`${now.getTime()}`.as("started_at"),
});

export function endCheck(db: Db, id: string) {
  return db.delete(passwordChecks).where(eq(passwordChecks.id, id));
}

/** Housekeeping: rows left by checks whose worker died (they stopped counting long ago). */
export async function deleteStaleChecks(db: Db, before: Date): Promise<number> {
  const gone = await db.delete(passwordChecks).where(lt(passwordChecks.startedAt, before)).returning({ id: passwordChecks.id });
  return gone.length;
}
