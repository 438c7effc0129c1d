import { eq, sql } from "drizzle-orm";
import type { Db } from "./client";
import { oauthClients } from "./oauth-server-tables";

/** A client as OAUTH_CLIENTS declares it (auth/oauth-server/configured-clients.ts), in the table's terms. */
export interface ConfiguredClientRow {
  id: string;
  name: string;
  uri: string | null;
  redirectUris: string[];
  secretHash: string | null;
  grantTypes: string[];
  scope: string;
  resources: string[];
}

/**
 * Writes a configured client's row (requests, consents and grants reference it) in one statement:
 * inserted, or brought up to the configuration. Only a row that came from the configuration is
 * changed: one registered another way under the same id is left as it is (no row comes back). An
 * admin's disabling (the emergency stop) and created_at survive.
 */
export function upsertConfiguredClient(db: Db, row: ConfiguredClientRow, now: Date) {
  return db
    .insert(oauthClients)
    .values({ ...row, source: "config", createdAt: now })
    .onConflictDoUpdate({
      target: oauthClients.id,
      set: {
        name: sql`excluded.name`,
        uri: sql`excluded.uri`,
        redirectUris: sql`excluded.redirect_uris`,
        secretHash: sql`excluded.secret_hash`,
        grantTypes: sql`excluded.grant_types`,
        scope: sql`excluded.scope`,
        resources: sql`excluded.resources`,
      },
      setWhere: eq(oauthClients.source, "config"),
    })
    .returning()
    .get();
}
