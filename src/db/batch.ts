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
