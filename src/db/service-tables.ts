import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// The service's own tables, which belong to no account (src/db/schema.ts re-exports them for
// drizzle-kit and the queries): the signing key ring, the mail budget's counts, the audit trail.
// Times are Unix milliseconds in INTEGER columns; Drizzle maps them to Date.

/**
 * The signing key ring (auth/core/signing-keys.ts, docs/design.md "Signing keys"), with SIGNING_KEYS =
 * "rotating". At most one key is `current` (signs) and one `next` (published, not yet signing): the
 * partial unique indexes make two racing rotations leave one result. `previous` keys still verify
 * until `retire_after`; `retired` ones are kept for the record with their private half erased.
 * The private JWK is sealed with JWT_WRAPPING_KEY, never stored in the clear.
 */
export const signingKeys = sqliteTable(
  "signing_keys",
  {
    kid: text().primaryKey(),
    state: text({ enum: ["next", "current", "previous", "retired"] }).notNull(),
    publicJwk: text("public_jwk", { mode: "json" }).$type<Record<string, string>>().notNull(),
    sealedPrivateJwk: text("sealed_private_jwk"), // null once retired
    origin: text({ enum: ["generated", "imported"] }).notNull(), // imported: the JWT_PRIVATE_KEY a deployment moved from
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    // Set once the KV mirror that every location reads has shown the key (auth/core/signing-keys.ts):
    // the windows count from what verifiers could really see, not from the D1 write.
    publishedAt: integer("published_at", { mode: "timestamp_ms" }),
    activatedAt: integer("activated_at", { mode: "timestamp_ms" }),
    deactivatedAt: integer("deactivated_at", { mode: "timestamp_ms" }),
    retireAfter: integer("retire_after", { mode: "timestamp_ms" }),
    retiredAt: integer("retired_at", { mode: "timestamp_ms" }),
    retiredReason: text("retired_reason", { enum: ["scheduled", "emergency"] }),
  },
  (t) => [
    uniqueIndex("signing_keys_one_current").on(t.state).where(sql`state = 'current'`),
    uniqueIndex("signing_keys_one_next").on(t.state).where(sql`state = 'next'`),
  ],
);

/**
 * Mail that a third party can cause, one row per mail let through (auth/mail/budget.ts): at most
 * MAIL_RECIPIENT_DAILY per recipient and purpose in any 24 hours, counted by one conditional INSERT.
 * The recipient is an HMAC of the lower-cased address under a key derived from a Worker secret, never
 * the address. The id makes a retried mail count once (a queued job's key: auth/mail/jobs.ts), and a
 * queued mail records when it went, so a job delivered again is not mailed twice. The daily cron
 * deletes rows older than two days.
 */
export const mailSends = sqliteTable(
  "mail_sends",
  {
    id: text().primaryKey(),
    recipient: text().notNull(),
    purpose: text({ enum: ["verify_email", "reset_password", "change_email", "security_notice", "invitation", "mail_sign_in"] }).notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    sentAt: integer("sent_at", { mode: "timestamp_ms" }), // a queued mail: when the Email Service took it
  },
  (t) => [index("mail_sends_recipient_purpose_created_at_idx").on(t.recipient, t.purpose, t.createdAt), index("mail_sends_created_at_idx").on(t.createdAt)],
);

/** Security events (audit.ts), readable by admins at GET /admin/audit. Ids and names only, never secrets. */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: integer().primaryKey({ autoIncrement: true }), // internal, admin-only: the order of events
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    event: text().notNull(),
    userId: text("user_id"), // no foreign key: the trail outlives a deleted user
    sessionId: text("session_id"),
    requestId: text("request_id"),
    ip: text(),
    detail: text({ mode: "json" }).$type<Record<string, string | number | boolean | null>>(),
  },
  (t) => [index("audit_events_user_id_id_idx").on(t.userId, t.id), index("audit_events_created_at_idx").on(t.createdAt)],
);

export type SigningKey = typeof signingKeys.$inferSelect;
