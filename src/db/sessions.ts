import type { Db } from "./client";
import { sessions } from "./schema";

export type NewSession = typeof sessions.$inferInsert;

export function insertSession(db: Db, row: NewSession) {
  return db.insert(sessions).values(row);
}
