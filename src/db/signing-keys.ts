import { and, eq, inArray, isNull, lte, ne, sql } from "drizzle-orm";
import { batch } from "./batch";
import type { Db } from "./client";
import { signingKeys } from "./schema";

/**
 * Queries for the signing key ring (auth/core/signing-keys.ts). Every change is conditional on the states
 * it read, and the partial unique indexes allow one current and one next key: two rotations racing
 * (the cron and an operator, two isolates starting the ring) leave the result of one.
 */

export type NewSigningKey = typeof signingKeys.$inferInsert;

/** Every key that is not retired: the ring as verifiers and the signer see it. */
export const liveKeys = (db: Db) => db.select().from(signingKeys).where(ne(signingKeys.state, "retired"));

/** Every key, newest first (the operator's view). */
export const allKeys = (db: Db) => db.select().from(signingKeys).orderBy(sql`${signingKeys.createdAt} DESC`);

/** Adds keys; one whose state is taken (a current or next key exists already) is left out. */
export const insertKeys = (db: Db, rows: NewSigningKey[]) => db.insert(signingKeys).values(rows).onConflictDoNothing().returning({ kid: signingKeys.kid });

const noCurrent = sql`NOT EXISTS (SELECT 1 FROM ${signingKeys} WHERE ${signingKeys.state} = 'current')`;

/**
 * One round trip: `demote` (the current key, to previous) or `retire` (any live key, at once), then
 * the next key signs if no key does any more, then a new next key if none is left. Each statement
 * is conditional, so a rotation that lost a race changes nothing.
 */
export async function turnRing(db: Db, p: { now: Date; demote?: string; retire?: string; promote?: string; newNext: NewSigningKey; readyBefore?: Date }) {
  const { now } = p;
  // An ordinary rotation demotes only while the next key it read is still next and was published early enough.
  const nextReady = p.readyBefore
    ? sql`EXISTS (SELECT 1 FROM ${signingKeys} WHERE ${signingKeys.kid} = ${p.promote ?? ""} AND ${signingKeys.state} = 'next' AND ${signingKeys.publishedAt} <= ${p.readyBefore.getTime()})`
    : sql`1`;
  const done = await batch(db, {
    demoted: p.demote
      ? db
          .update(signingKeys)
          .set({ state: "previous", deactivatedAt: now })
          .where(and(eq(signingKeys.kid, p.demote), eq(signingKeys.state, "current"), nextReady))
          .returning({ kid: signingKeys.kid })
      : undefined,
    retired: p.retire
      ? db
          .update(signingKeys)
          .set({
            state: "retired",
            sealedPrivateJwk: null,
            retiredAt: now,
            retiredReason: "emergency",
            deactivatedAt: sql`coalesce(${signingKeys.deactivatedAt}, ${now.getTime()})`,
          })
          .where(and(eq(signingKeys.kid, p.retire), ne(signingKeys.state, "retired")))
          .returning({ kid: signingKeys.kid, state: signingKeys.state })
      : undefined,
    promoted: db
      .update(signingKeys)
      .set({ state: "current", activatedAt: now })
      .where(and(eq(signingKeys.state, "next"), p.promote ? eq(signingKeys.kid, p.promote) : sql`1`, noCurrent, nextReady))
      .returning({ kid: signingKeys.kid }),
    created: insertKeys(db, [p.newNext]),
  });
  return { demoted: done.demoted?.[0]?.kid, retired: done.retired?.[0]?.kid, promoted: done.promoted[0]?.kid, created: done.created[0]?.kid };
}

/**
 * After a mirror showed these keys: the windows start. A `published` key (next or current) counts as
 * published from `shown`; a `stopped` (previous) key's retention starts then. Only the keys that
 * mirror showed, and only once.
 */
export async function markMirrored(db: Db, shown: Date, keepPrevious: number, kids: { published: string[]; stopped: string[] }) {
  await batch(db, {
    published: db
      .update(signingKeys)
      .set({ publishedAt: shown })
      .where(and(inArray(signingKeys.kid, kids.published), inArray(signingKeys.state, ["next", "current"]), isNull(signingKeys.publishedAt))),
    retention: db
      .update(signingKeys)
      .set({ retireAfter: new Date(shown.getTime() + keepPrevious) })
      .where(and(inArray(signingKeys.kid, kids.stopped), eq(signingKeys.state, "previous"), isNull(signingKeys.retireAfter))),
  });
}

/** Retires the previous keys whose retention is over; their private halves are erased. */
export const retireExpired = (db: Db, now: Date) =>
  db
    .update(signingKeys)
    .set({ state: "retired", sealedPrivateJwk: null, retiredAt: now, retiredReason: "scheduled" })
    .where(and(eq(signingKeys.state, "previous"), lte(signingKeys.retireAfter, now)))
    .returning({ kid: signingKeys.kid });
