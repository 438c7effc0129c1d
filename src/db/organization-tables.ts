import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./schema";

// Teams and machines (docs/organizations.md, docs/api-keys.md): organizations, who belongs to each with
// which role, invitations in flight, and API keys. A session's active organization is sessions.org_id
// (src/db/schema.ts); its claims are read through memberships, so a removed member or a deleted
// organization loses them at the next refresh. Times are Unix milliseconds in INTEGER columns.

export const organizations = sqliteTable(
  "organizations",
  {
    id: text().primaryKey(), // random, opaque: the `org_id` claim
    name: text().notNull(),
    slug: text().notNull(), // lower case, unique: the `org_slug` claim
    createdBy: text("created_by"), // a user id, kept as text: the organization outlives its creator
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [uniqueIndex("organizations_slug_unique").on(t.slug), index("organizations_created_at_id_idx").on(t.createdAt, t.id)],
);

/** One row per member: the role is `owner`, `admin`, `member` or one ORG_ROLES defines (src/config-orgs.ts). */
export const memberships = sqliteTable(
  "memberships",
  {
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: text().notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.userId] }),
    index("memberships_user_id_idx").on(t.userId),
    index("memberships_org_id_role_idx").on(t.orgId, t.role),
  ],
);

/**
 * An invitation to an address with a role. The link's token is random; only its SHA-256 is stored.
 * Accepted once, by a signed-in account whose verified address is `email`.
 */
export const invitations = sqliteTable(
  "invitations",
  {
    id: text().primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    email: text().notNull(), // lower case
    role: text().notNull(),
    invitedBy: text("invited_by"), // a user id, kept as text
    tokenHash: text("token_hash").notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    acceptedAt: integer("accepted_at", { mode: "timestamp_ms" }),
    acceptedBy: text("accepted_by"),
    revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
  },
  (t) => [
    uniqueIndex("invitations_token_hash_unique").on(t.tokenHash),
    index("invitations_org_id_created_at_idx").on(t.orgId, t.createdAt),
    index("invitations_email_idx").on(t.email),
    index("invitations_expires_at_idx").on(t.expiresAt),
  ],
);

/**
 * API keys, owned by a user or by an organization (exactly one of user_id, org_id). The key is shown
 * once; only its SHA-256 is stored (it carries at least 128 random bits, so a fast hash is enough).
 */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text().primaryKey(), // public: the `key_id` claim of the tokens it is exchanged for
    keyHash: text("key_hash").notNull(),
    start: text().notNull(), // the key's first characters, to recognise it in a list
    name: text().notNull(),
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
    orgId: text("org_id").references(() => organizations.id, { onDelete: "cascade" }),
    createdBy: text("created_by").notNull(), // a user id, kept as text: an organization's key outlives its creator's membership
    scopes: text({ mode: "json" }).$type<string[]>().notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }),
    revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
    lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }), // written at most once a minute
  },
  (t) => [uniqueIndex("api_keys_key_hash_unique").on(t.keyHash), index("api_keys_user_id_idx").on(t.userId), index("api_keys_org_id_idx").on(t.orgId)],
);
