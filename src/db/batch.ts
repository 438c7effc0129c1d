import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "./client";

/**
 * A D1 batch built and read by name: one round trip and one implicit transaction, as db.batch, but
 * each result comes back under its statement's name, so adding a statement cannot shift another's
 * result. An `undefined` entry (a statement this call does not need) is left out, and reads back
 * as undefined. The only caller of db.batch (scripts/check-layers.mjs holds the others to it).
 */

type Statement = BatchItem<"sqlite">;
export type Statements = Record<string, Statement | undefined>;

/** A statement's result, or undefined for a statement left out (distributes over a union of the two). */
type ResultOf<S> = S extends Statement ? Awaited<S> : undefined;
export type BatchResults<T extends Statements> = { [K in keyof T]: ResultOf<T[K]> };

export async function batch<T extends Statements>(db: Db, statements: T): Promise<BatchResults<T>> {
  const names = Object.keys(statements).filter((name) => statements[name] !== undefined);
  const results = await db.batch(names.map((name) => statements[name]!) as [Statement, ...Statement[]]);
  return Object.fromEntries(names.map((name, i) => [name, results[i]])) as BatchResults<T>;
}

type Joined<P extends Statements[]> = P extends [infer H extends Statements, ...infer R extends Statements[]] ? H & Joined<R> : unknown;

/**
 * Named parts from several places (a flow's own statements, a helper's) as one batch, in order. A
 * name given twice would drop a statement silently, so it is refused at once.
 */
export function joined<P extends Statements[]>(...parts: P): Joined<P> {
  const all: Statements = {};
  for (const part of parts) {
    for (const [name, statement] of Object.entries(part)) {
      if (name in all) throw new Error(`batch: two statements named ${name}`);
      all[name] = statement;
    }
  }
  return all as Joined<P>;
}
