import { sql } from "drizzle-orm";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

export type Db = DrizzleD1Database<typeof schema>;

const clients = new WeakMap<D1Database, Db>();

/** One Drizzle client per D1 binding and isolate. */
export function getDb(d1: D1Database): Db {
  let db = clients.get(d1);
  if (!db) {
    db = drizzle(d1, { schema });
    clients.set(d1, db);
  }
  return db;
}

/**
 * A client for reads that may lag the primary by a moment: lists a person looks at (their sessions,
 * the admin's user list and audit view). Through D1's Sessions API the first query may go to a
 * nearby read replica (when replication is on for the database; otherwise to the primary, as
 * always). Anything that decides something or must see its own writes uses getDb. One per request:
 * a session is that request's consistent view.
 */
export function getReplicaDb(d1: D1Database): Db {
  // Drizzle only calls prepare() and batch(), which a session has too; its types predate sessions.
  return drizzle(d1.withSession("first-unconstrained") as unknown as D1Database, { schema });
}

/** The name of the unique index a D1 error violated, if that is what it is. */
export function uniqueViolation(err: unknown): string | null {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const m = /UNIQUE constraint failed: (?:index '([^']+)'|([\w.]+))/.exec(e.message);
    if (m) return (m[1] ?? m[2])!;
  }
  return null;
}

/**
 * D1 refused the query because the database has more queued than it can run (it runs one at a
 * time): the query did not run, so the request may simply be retried in a moment.
 */
export function overloaded(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (/D1 DB is overloaded/.test(e.message)) return true;
  }
  return false;
}

/** For /health: D1 answers a trivial query. */
export async function pingDb(db: Db): Promise<void> {
  await db.run(sql`SELECT 1`);
}
