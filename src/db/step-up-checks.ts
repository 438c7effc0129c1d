import { and, eq, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { checksInFlight, newCheck } from "./password-checks";
import { passwordChecks, sessions, type User, users } from "./schema";
import { live } from "./sessions";

/** A session's own budget for step-up checks (auth/core/step-up.ts): checks in flight, failures, the reset after a pass. */

/**
 * Starts a step-up check (auth/core/step-up.ts) against this session's own budget, and reads the user,
 * and when the session signed in, in one round trip: a row in password_checks, added only while the session is the user's, live,
 * and its failures plus checks in flight stay under `max`, so concurrent guesses cannot exceed it.
 */
export async function beginStepUpCheck(
  db: Db,
  sessionId: string,
  userId: string,
  now: Date,
  max: number,
  staleMs: number,
): Promise<{ check?: string; user?: User; authTime?: Date }> {
  const id = crypto.randomUUID();
  const subject = `session:${sessionId}`;
  const { started, found, signedIn } = await batch(db, {
    started: db
      .insert(passwordChecks)
      .select(
        db
          .select(newCheck(id, subject, now))
          .from(sessions)
          .where(
            and(
              eq(sessions.id, sessionId),
              eq(sessions.userId, userId),
              live(now),
              sql`${sessions.passwordFailures} + ${checksInFlight(subject, now, staleMs)} < ${max}`,
            ),
          ),
      )
      .returning({ id: passwordChecks.id }),
    found: db.select().from(users).where(eq(users.id, userId)),
    // When the session's sign-in happened, as D1 recorded it (not as a token claims it).
    signedIn: db
      .select({ authTime: sessions.authTime })
      .from(sessions)
      .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId))),
  });
  return { check: started[0]?.id, user: found[0], authTime: signedIn[0]?.authTime };
}

/** A wrong password or code in a step-up check: counts against the session's budget. Returns the count. */
export function countStepUpFailure(db: Db, sessionId: string) {
  return db
    .update(sessions)
    .set({ passwordFailures: sql`${sessions.passwordFailures} + 1` })
    .where(eq(sessions.id, sessionId))
    .returning({ failures: sessions.passwordFailures });
}

/** A step-up check passed: the session's budget is whole again. */
export function resetStepUpFailures(db: Db, sessionId: string) {
  return db
    .update(sessions)
    .set({ passwordFailures: 0 })
    .where(and(eq(sessions.id, sessionId), sql`${sessions.passwordFailures} > 0`));
}
