import { sql } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
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

/** The name of the unique index a D1 error violated, if that is what it is. */
export function uniqueViolation(err: unknown): string | null {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const m = /UNIQUE constraint failed: (?:index '([^']+)'|([\w.]+))/.exec(e.message);
    if (m) return (m[1] ?? m[2])!;
  }
  return null;
}

/** For /health: D1 answers a trivial query. */
export async function pingDb(db: Db): Promise<void> {
  await db.run(sql`SELECT 1`);
}
