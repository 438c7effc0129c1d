import { eq, sql } from "drizzle-orm";
import type { Db } from "./client";
import { oauthClients } from "./oauth-server-tables";

/** What a client ID metadata document says of its client (auth/oauth-server/metadata-document.ts). */
export interface DocumentClientRow {
  id: string; // the document's URL
  name: string;
  uri: string | null;
  redirectUris: string[];
  grantTypes: string[];
  scope: string;
  now: Date;
  expiresAt: Date; // the cache's end: refetched after it
}

/**
 * Stores (or refreshes) a document client in one statement, so two first uses at once make one row.
 * Only a row that came from a document is refreshed: one an admin registered under the same URL is
 * left as it is (no row comes back). An admin's disabling (disabled_at) survives a refresh, and
 * created_at stays the first fetch's. A document client is public: no secret, no own resources.
 */
export function upsertDocumentClient(db: Db, row: DocumentClientRow) {
  return db
    .insert(oauthClients)
    .values({
      id: row.id,
      name: row.name,
      uri: row.uri,
      redirectUris: row.redirectUris,
      secretHash: null,
      grantTypes: row.grantTypes,
      scope: row.scope,
      resources: [],
      source: "metadata",
      createdAt: row.now,
      expiresAt: row.expiresAt,
    })
    .onConflictDoUpdate({
      target: oauthClients.id,
      set: {
        name: sql`excluded.name`,
        uri: sql`excluded.uri`,
        redirectUris: sql`excluded.redirect_uris`,
        grantTypes: sql`excluded.grant_types`,
        scope: sql`excluded.scope`,
        expiresAt: sql`excluded.expires_at`,
      },
      setWhere: eq(oauthClients.source, "metadata"),
    })
    .returning()
    .get();
}
