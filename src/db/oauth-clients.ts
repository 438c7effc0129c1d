import { eq } from "drizzle-orm";
import type { Db } from "./client";
import { oauthClients } from "./oauth-server-tables";

export type NewOAuthClient = typeof oauthClients.$inferInsert;

/** A client by its client_id, disabled or not (the caller judges). */
export function findClient(db: Db, id: string) {
  return db.select().from(oauthClients).where(eq(oauthClients.id, id)).get();
}

export function insertClient(db: Db, row: NewOAuthClient) {
  return db.insert(oauthClients).values(row);
}
