import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./schema";

// Sign-in by mail (docs/mail-sign-in.md): one row per message sent, carrying both a link and a short
// code. Only hashes are stored. Times are Unix milliseconds in INTEGER columns.

/**
 * A mailed sign-in (or sign-up, where registration is open and no account has the address): the link's
 * token and the code are each good once, within `expiresAt`, and only while this is the address's newest
 * message; a wrong code spends one of the message's attempts. Anyone can grow this table: the mail
 * budgets bound it per address and per client, and the daily cron removes rows past their expiry.
 */
export const mailSignIns = sqliteTable(
  "mail_sign_ins",
  {
    id: text().primaryKey(), // random, opaque
    email: text().notNull(), // lower-cased: the address the message went to
    // The account the message signs in to; null: a sign-up (no account had the address when it was sent).
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
    tokenHash: text("token_hash").notNull(), // SHA-256 of the link's 256-bit token
    codeHash: text("code_hash").notNull(), // SHA-256 of the row id and the code (the code is short: the id salts it)
    attempts: integer().notNull().default(0), // wrong codes tried against this message
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    usedAt: integer("used_at", { mode: "timestamp_ms" }), // used, superseded by a newer message, or out of attempts
  },
  (t) => [
    uniqueIndex("mail_sign_ins_token_hash_unique").on(t.tokenHash),
    index("mail_sign_ins_email_created_at_idx").on(t.email, t.createdAt),
    index("mail_sign_ins_expires_at_idx").on(t.expiresAt),
  ],
);

export type MailSignIn = typeof mailSignIns.$inferSelect;
