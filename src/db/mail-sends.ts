import { and, eq, gt, lt, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client";
import { mailSends } from "./schema";

/** Queries for the per-recipient mail budget (auth/mail/budget.ts). */

export type BudgetedPurpose = (typeof mailSends.$inferSelect)["purpose"];

/** One mail counted against its recipient's budget: `id` makes a retry count once. */
export interface MailCount {
  id: string;
  recipient: string;
  purpose: BudgetedPurpose;
  now: Date;
  perDay: number;
}

const DAY_MS = 86_400_000;

const counted = (m: MailCount) =>
  sql<number>`(SELECT count(*) FROM ${mailSends} WHERE ${and(eq(mailSends.recipient, m.recipient), eq(mailSends.purpose, m.purpose), gt(mailSends.createdAt, new Date(m.now.getTime() - DAY_MS)))})`;

/** True while the recipient's budget for the purpose has room, or this mail is counted already, and `also` holds. */
export const withinBudget = (m: MailCount, also?: SQL) =>
  and(also, sql`(${counted(m)} < ${m.perDay} OR EXISTS (SELECT 1 FROM ${mailSends} WHERE ${mailSends.id} = ${m.id}))`)!;

/**
 * Counts the mail: one conditional INSERT, so concurrent ones cannot pass `perDay` (D1 runs one
 * statement at a time), and only if `onlyIf` holds (in a batch: its link was stored). A row back: the
 * mail may go; none: the budget is spent (or `onlyIf` failed, or it was counted before).
 */
export function countMail(db: Db, m: MailCount, onlyIf?: SQL) {
  return db
    .insert(mailSends)
    .select(
      db
        .select({
          id: sql`${m.id}`.as("id"),
          recipient: sql`${m.recipient}`.as("recipient"),
          purpose: sql`${m.purpose}`.as("purpose"),
          createdAt: sql`${m.now.getTime()}`.as("created_at"),
          sentAt: sql`NULL`.as("sent_at"),
        })
        .from(sql`(SELECT 1)`)
        .where(and(sql`${counted(m)} < ${m.perDay}`, onlyIf)),
    )
    .onConflictDoNothing()
    .returning({ id: mailSends.id });
}

/** How many mails of the purpose went to the recipient in the last 24 hours (to tell a refusal by the budget). */
export const mailsCounted = (db: Db, m: MailCount) => db.select({ n: counted(m) }).from(sql`(SELECT 1)`);

/** Whether the counted mail `id` went out already (a queued job delivered again), as a read for a batch. */
export const mailSentAt = (db: Db, id: string) => db.select({ sentAt: mailSends.sentAt }).from(mailSends).where(eq(mailSends.id, id));

/** Records that the counted mail `id` went out. */
export const markMailSent = (db: Db, id: string, now: Date) => db.update(mailSends).set({ sentAt: now }).where(eq(mailSends.id, id));

/** Housekeeping: rows older than `before` (they stopped counting after a day); returns how many. */
export async function deleteOldMailSends(db: Db, before: Date): Promise<number> {
  return (await db.delete(mailSends).where(lt(mailSends.createdAt, before)).returning({ id: mailSends.id })).length;
}
