import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./schema";

// The authorization server's tables (auth/oauth-server/, docs/oauth-server.md): the apps that may ask a
// user for access, their requests in flight, and what each user agreed to. A grant itself is a row of
// `sessions` with a client_id (src/db/schema.ts): it rotates, is reused and revoked like any session.
// Times are Unix milliseconds in INTEGER columns; Drizzle maps them to Date.

/**
 * Apps registered to ask for access: by an admin (POST /admin/clients), in configuration (OAUTH_CLIENTS:
 * the row follows it), by dynamic registration (RFC 7591), or known by a client ID metadata document
 * (its https URL is the id; the row is a cache).
 */
export const oauthClients = sqliteTable(
  "oauth_clients",
  {
    id: text().primaryKey(), // the client_id
    name: text().notNull(), // shown on the consent page
    uri: text(), // the app's home page, shown on the consent page
    redirectUris: text("redirect_uris", { mode: "json" }).$type<string[]>().notNull(),
    secretHash: text("secret_hash"), // SHA-256 of the client secret (256 random bits); null: a public client
    grantTypes: text("grant_types", { mode: "json" }).$type<string[]>().notNull(),
    scope: text().notNull(), // the scopes it may ask for, space separated
    resources: text({ mode: "json" }).$type<string[]>().notNull(), // resources it may ask for besides OAUTH_RESOURCES
    source: text({ enum: ["admin", "dynamic", "metadata", "config"] }).notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    disabledAt: integer("disabled_at", { mode: "timestamp_ms" }), // an admin disabled it: no request, token or refresh
    // dynamic: removed by the cron at this time unless it got a token first; metadata: the cache's end
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }),
    firstTokenAt: integer("first_token_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("oauth_clients_expires_at_idx").on(t.expiresAt)],
);

/**
 * An authorization request in flight (GET /oauth2/authorize), from the app's consent page to the code's
 * exchange. The id handed to the app is random; only its SHA-256 is stored, as is the code's. The first
 * signed-in session that opens the request holds it: no other session can approve it.
 */
export const oauthRequests = sqliteTable(
  "oauth_requests",
  {
    id: text().primaryKey(),
    clientId: text("client_id")
      .notNull()
      .references(() => oauthClients.id, { onDelete: "cascade" }),
    redirectUri: text("redirect_uri").notNull(),
    state: text(),
    scope: text().notNull(), // what is asked, space separated
    resource: text(), // RFC 8707, normalized; null: none asked (the token's aud is ISSUER)
    codeChallenge: text("code_challenge").notNull(), // PKCE S256
    nonce: text(),
    prompt: text(), // "none", "login", "consent" or null
    maxAge: integer("max_age"), // seconds
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    sessionId: text("session_id"), // the session that holds it
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
    decidedAt: integer("decided_at", { mode: "timestamp_ms" }),
    approved: integer({ mode: "boolean" }),
    // From the approving session: what the grant's tokens carry as auth_time and amr.
    authTime: integer("auth_time", { mode: "timestamp_ms" }),
    amr: text({ mode: "json" }).$type<string[]>(),
    codeHash: text("code_hash"),
    codeExpiresAt: integer("code_expires_at", { mode: "timestamp_ms" }),
    codeUsedAt: integer("code_used_at", { mode: "timestamp_ms" }),
    grantId: text("grant_id"), // the session the code's exchange opened: a second use of the code ends it
  },
  (t) => [uniqueIndex("oauth_requests_code_hash_unique").on(t.codeHash), index("oauth_requests_expires_at_idx").on(t.expiresAt)],
);

/**
 * What a user agreed an app may have: per resource ("" for none), the scopes, so a request within
 * them asks again only with prompt=consent; valid while the user's session epoch is the one stored.
 */
export const oauthConsents = sqliteTable(
  "oauth_consents",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    clientId: text("client_id")
      .notNull()
      .references(() => oauthClients.id, { onDelete: "cascade" }),
    resource: text().notNull(),
    scope: text().notNull(),
    // The user's session epoch when remembered: ending every session (a password change, a reset, a
    // reclaim, "sign me out everywhere") raises it, and with it every remembered consent lapses.
    sessionEpoch: integer("session_epoch").notNull().default(0),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.clientId, t.resource] }), index("oauth_consents_client_id_idx").on(t.clientId)],
);

export type OAuthClient = typeof oauthClients.$inferSelect;
export type OAuthRequest = typeof oauthRequests.$inferSelect;
