import { and, type SQL, sql } from "drizzle-orm";
import { recoveryHolds, sessions } from "./schema";

/**
 * What a sign-in's session batch (auth/core/sign-in.ts openSession) may leave out, as the sign-in's
 * first read of the account saw it: the per-user cap's eviction while the account has room for one
 * more session, and the cancel of a held recovery while it has none. A statement left out becomes a
 * condition on the session's own insert that holds exactly when that statement would have changed
 * nothing; a session or a hold that landed since the read refuses the insert, and the caller runs
 * the full batch instead. So the outcome is the full batch's, one statement or two cheaper.
 */

// Written out with their tables: these run inside statements on users (alone, or joined), where
// Drizzle would leave a column unqualified.
const owner = sql.raw('"users"."id"');
const liveOwn = (now: Date) =>
  sql`(SELECT count(*) FROM ${sessions} WHERE ${sql.raw('"sessions"."user_id"')} = ${owner} AND ${sql.raw('"sessions"."client_id"')} IS NULL AND ${sql.raw('"sessions"."revoked_at"')} IS NULL AND ${sql.raw('"sessions"."expires_at"')} > ${now.getTime()})`;
const holdOf = sql`EXISTS (SELECT 1 FROM ${recoveryHolds} WHERE ${sql.raw('"recovery_holds"."user_id"')} = ${owner})`;

/** The account's room as a first read sees it. */
export interface Room {
  /** Its live first-party sessions (the ones the cap counts; grants to apps are not). */
  liveSessions: number;
  /** Whether a recovery is held for it. */
  held: boolean;
}

/** Room's columns, for a read of users (its names are unique, for a D1 batch's rows keyed by column name). */
export const roomColumns = (now: Date) => ({
  liveSessions: sql<number>`${liveOwn(now)}`.mapWith(Number).as("room_live_sessions"),
  held: sql<boolean>`${holdOf}`.mapWith(Boolean).as("room_held"),
});

/**
 * The session insert's condition with what the batch leaves out: `underCap`, fewer than that many
 * live sessions (one more leaves nothing beyond the cap to end); `noHold`, no held recovery (a cancel
 * would delete nothing).
 */
export const whileRoom = (condition: SQL, now: Date, left: { underCap?: number; noHold: boolean }) =>
  and(condition, left.underCap === undefined ? undefined : sql`${liveOwn(now)} < ${left.underCap}`, left.noHold ? sql`NOT ${holdOf}` : undefined)!;
