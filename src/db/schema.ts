import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// Times are Unix milliseconds in INTEGER columns; Drizzle maps them to Date. The service's own
// tables (signing keys, mail counts, the audit trail) are in ./service-tables.ts, re-exported here;
// the authorization server's in ./oauth-server-tables.ts (which imports this file, so is not re-exported).
export * from "./service-tables";

export const users = sqliteTable(
  "users",
  {
    id: text().primaryKey(), // random, opaque, non-sequential
    // As the user typed it; unique regardless of case (index below). Optional: NO_USERNAME ("") for an
    // account that signed up without one (auth/core/ways-in.ts), shown as null.
    username: text().notNull(),
    email: text(), // stored lower-cased, so the plain unique index is case-insensitive
    // When the address was proved by a mailed link (verification, reset, confirmed change). Also the
    // mailbox's rank against TOTP (auth/core/ways-in.ts): an address confirmed after a change that a TOTP
    // code authorized takes that TOTP's time, so its mailbox alone never outranks that TOTP.
    emailVerifiedAt: integer("email_verified_at", { mode: "timestamp_ms" }),
    // Signed up while REQUIRE_VERIFIED_EMAIL is on (no session until the address is proved): unless
    // it is proved by then, the daily cron removes the account and frees the address (docs/storage.md).
    verifyBy: integer("verify_by", { mode: "timestamp_ms" }),
    disabledAt: integer("disabled_at", { mode: "timestamp_ms" }), // an admin disabled the account
    passwordHash: text("password_hash").notNull(), // self-describing PBKDF2 string (auth/core/passwords.ts)
    roles: text({ mode: "json" }).$type<string[]>().notNull().default(["user"]),
    // Online-guessing protection (auth/core/lockout.ts): failures in a row, and the lock they earned.
    failedLogins: integer("failed_logins").notNull().default(0),
    lastFailedLoginAt: integer("last_failed_login_at", { mode: "timestamp_ms" }),
    lockedUntil: integer("locked_until", { mode: "timestamp_ms" }),
    // The lock whose first refused attempt was audited: one audit row per lock period, not per attempt.
    lockAuditedUntil: integer("lock_audited_until", { mode: "timestamp_ms" }),
    // Bumped whenever the password is replaced (not when it is only rehashed): logins and changes
    // write only if the version they checked is still current (db/standing.ts signInConditions).
    passwordVersion: integer("password_version").notNull().default(0),
    // Bumped by every "end all sessions" (logout-all, password change). Each access token carries the
    // epoch it was issued in; KV `usr:<id>` refuses tokens of older epochs (auth/core/revocations.ts), except
    // those of `epochKeptSession`, the caller's session that a password change keeps.
    sessionEpoch: integer("session_epoch").notNull().default(0),
    epochKeptSession: text("epoch_kept_session"),
    // TOTP (auth/totp/mfa.ts): the secret sealed with MFA_ENCRYPTION_KEY (auth/core/secrets.ts), pending until
    // enabled; the last time step a code was accepted for (a code is good once); and the SHA-256 of
    // each unused recovery code (a JSON array, so enabling and using one are single statements).
    totpSecret: text("totp_secret"),
    totpEnabledAt: integer("totp_enabled_at", { mode: "timestamp_ms" }),
    totpLastStep: integer("totp_last_step").notNull().default(0),
    recoveryCodes: text("recovery_codes", { mode: "json" }).$type<string[]>(),
    // Ways in (auth/core/ways-in.ts): when the password, the address and TOTP were set, and by which
    // session (null: by a mailed link, or before this was recorded).
    passwordSetAt: integer("password_set_at", { mode: "timestamp_ms" }),
    passwordSetBy: text("password_set_by"),
    emailSetAt: integer("email_set_at", { mode: "timestamp_ms" }),
    emailSetBy: text("email_set_by"),
    totpEnabledBy: text("totp_enabled_by"),
    // A guest (auth/guests/): an anonymous account until a way in is added; the cron removes idle ones.
    isGuest: integer("is_guest", { mode: "boolean" }).notNull().default(false),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [
    uniqueIndex("users_username_lower_unique").on(sql`lower(${t.username})`).where(sql`${t.username} <> ''`),
    index("users_is_guest_created_at_idx").on(t.isGuest, t.createdAt),
    uniqueIndex("users_email_unique").on(t.email),
    index("users_created_at_id_idx").on(t.createdAt, t.id),
  ],
);

export const sessions = sqliteTable(
  "sessions",
  {
    id: text().primaryKey(), // the `sid` claim of every access token issued in this session
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    refreshTokenHash: text("refresh_token_hash").notNull(), // SHA-256 of the current refresh token; the token itself is never stored
    userAgent: text("user_agent"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }).notNull(),
    // When the newest access token issued in this session expires: how long a revocation must last.
    accessExpiresAt: integer("access_expires_at", { mode: "timestamp_ms" }).notNull().default(sql`0`),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    revokedAt: integer("revoked_at", { mode: "timestamp_ms" }), // null while the session is live
    // Wrong passwords or codes in this session's step-up checks (auth/core/step-up.ts): its own budget,
    // apart from the login lock, so a stranger's failed logins never block the signed-in owner.
    passwordFailures: integer("password_failures").notNull().default(0),
    // How the sign-in that opened the session was proved (RFC 8176 amr values) and when: carried by
    // every access token of the session as `amr` and `auth_time`.
    amr: text({ mode: "json" }).$type<string[]>().notNull().default(["pwd"]),
    authTime: integer("auth_time", { mode: "timestamp_ms" }).notNull().default(sql`0`),
    // A grant to an app (auth/oauth-server/): its client, the scopes and the resource (RFC 8707) granted. Null: the API's own sign-in.
    clientId: text("client_id"),
    scope: text(),
    resource: text(),
    approvedBy: text("approved_by"), // a grant: the first-party session whose approval opened it (ended with it if that one is stolen)
    orgId: text("org_id"), // the active organization (db/organization-tables.ts), in its tokens while the user is a member
    switchedWith: text("switched_with"), // jti of the token the last switch was made with: one token switches once (db/organizations.ts)
  },
  (t) => [
    uniqueIndex("sessions_refresh_token_hash_unique").on(t.refreshTokenHash),
    index("sessions_user_id_created_at_idx").on(t.userId, t.createdAt, t.id),
    index("sessions_expires_at_idx").on(t.expiresAt),
    index("sessions_client_id_idx").on(t.clientId),
  ],
);

/**
 * Hashes of refresh tokens that were already rotated. A hash found here (and not as a session's
 * current hash) is a replayed token: the theft signal. Rows go with their session (cascade).
 */
export const rotatedRefreshTokens = sqliteTable(
  "rotated_refresh_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    rotatedAt: integer("rotated_at", { mode: "timestamp_ms" }).notNull(),
    // SHA-256 of the rotating client's IP and User-Agent: the grace window covers only that client.
    rotatedBy: text("rotated_by"),
  },
  (t) => [index("rotated_refresh_tokens_session_id_idx").on(t.sessionId)],
);

/**
 * Password checks in flight (auth/core/lockout.ts): one row from the start of a check to its end, so
 * concurrent checks count against a budget without being failures. A row whose worker died is
 * simply ignored once it is older than a few seconds; the daily cron deletes leftovers.
 */
export const passwordChecks = sqliteTable(
  "password_checks",
  {
    id: text().primaryKey(),
    subject: text().notNull(), // "user:<id>" for logins, "session:<id>" for POST /password
    startedAt: integer("started_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [index("password_checks_subject_started_at_idx").on(t.subject, t.startedAt)],
);

/**
 * Single-use links mailed to users (auth/mail/links.ts): email verification, password reset, email
 * change, and "this was not me" (revoke_way_in). Only the SHA-256 of the token is stored.
 */
export const accountTokens = sqliteTable(
  "account_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text({ enum: ["verify_email", "reset_password", "change_email", "revoke_way_in"] }).notNull(),
    email: text().notNull(), // the address the link was sent to (for change_email: the new address)
    sessionId: text("session_id"), // the session whose request issued it (null: asked without signing in)
    // revoke_way_in: the way in it removes ("passkey:<id>", "totp:<enabled at, ms>", "email:<address>");
    // change_email: "totp:<enabled at, ms>" when the request's step-up included that TOTP's code.
    way: text(),
    attempts: integer().notNull().default(0), // reset_password: codes tried with it (auth/mailbox/reclaim.ts)
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    usedAt: integer("used_at", { mode: "timestamp_ms" }), // used or superseded
    usedBy: text("used_by"), // a random id of the request that used it: what later writes of that request check
  },
  (t) => [
    index("account_tokens_user_id_purpose_idx").on(t.userId, t.purpose),
    index("account_tokens_email_purpose_idx").on(t.email, t.purpose),
    index("account_tokens_expires_at_idx").on(t.expiresAt),
  ],
);

/**
 * Short-lived, single-use challenges: the second step of a login with TOTP on (its id is the SHA-256
 * of the token handed to the client), and WebAuthn challenges (the id is the challenge itself). Using
 * one is a conditional UPDATE: of two requests, exactly one wins. The daily cron deletes old ones.
 */
export const challenges = sqliteTable(
  "challenges",
  {
    id: text().primaryKey(),
    purpose: text({ enum: ["mfa_login", "passkey_register", "passkey_login"] }).notNull(),
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }), // none for a passkey login
    passwordVersion: integer("password_version"), // mfa_login: the password the first step checked
    // mfa_login: how the first step was proved, as an amr value: "pwd" (null: before this was recorded), or "fed" (social sign-in)
    firstFactor: text("first_factor"),
    failures: integer().notNull().default(0), // mfa_login: wrong codes sent with it
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    usedAt: integer("used_at", { mode: "timestamp_ms" }),
    // Who used it: a random id of that request (mfa_login: the id of the session it opened), and
    // the SHA-256 of the client's IP and User-Agent (a retry after a lost answer must be that client).
    usedBy: text("used_by"),
    usedByClient: text("used_by_client"),
  },
  (t) => [index("challenges_expires_at_idx").on(t.expiresAt)],
);

/** WebAuthn credentials (auth/passkeys/passkeys.ts). The public key only; the private key never leaves the authenticator. */
export const passkeys = sqliteTable(
  "passkeys",
  {
    id: text().primaryKey(), // the credential id, base64url
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    publicKey: text("public_key").notNull(), // COSE key, base64url
    counter: integer().notNull().default(0), // the authenticator's signature counter (0: it keeps none)
    transports: text({ mode: "json" }).$type<string[]>(),
    deviceType: text("device_type").notNull(), // "singleDevice" or "multiDevice" (synced)
    backedUp: integer("backed_up", { mode: "boolean" }).notNull(),
    name: text().notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    addedBy: text("added_by"), // the session that registered it
    lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("passkeys_user_id_created_at_idx").on(t.userId, t.createdAt)],
);

/**
 * Social sign-in identities (auth/social/flow.ts): an account at a provider, keyed by (issuer, subject),
 * never by address. `email` is the address the provider last asserted, and whether it vouched for it.
 */
export const identities = sqliteTable(
  "identities",
  {
    id: text().primaryKey(), // random: what the API names it by
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    provider: text().notNull(), // the configured provider id (OAUTH_PROVIDERS)
    issuer: text().notNull(),
    subject: text().notNull(),
    email: text(),
    emailVerified: integer("email_verified", { mode: "boolean" }).notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    addedBy: text("added_by"), // the session that linked it (null: it created the account, or signed in by address)
    lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
  },
  (t) => [uniqueIndex("identities_issuer_subject_unique").on(t.issuer, t.subject), index("identities_user_id_idx").on(t.userId)],
);

/**
 * A social sign-in or link in flight (auth/social/flow.ts). Started: the row holds what the callback
 * checks (the state's SHA-256 is the id; the browser that started it, as the SHA-256 of its flow
 * cookie; PKCE verifier; nonce). Called back: used once (`usedAt`). Where the app must finish it
 * (bearer mode, a second step, a link), the callback leaves a one-time code for POST /oauth/exchange:
 * its SHA-256 in `grant`, the account in `grantUserId`, a pending link's identity in `linked`.
 */
export const oauthFlows = sqliteTable(
  "oauth_flows",
  {
    id: text().primaryKey(),
    provider: text().notNull(),
    purpose: text({ enum: ["sign_in", "link"] }).notNull(),
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }), // link: the account
    sessionId: text("session_id"), // link: the session that asked (the exchange must come from it)
    browser: text().notNull(), // "" for a link not yet claimed by the browser that will carry it (auth/social/flow.ts)
    codeVerifier: text("code_verifier").notNull(),
    nonce: text().notNull(),
    useCookie: integer("use_cookie", { mode: "boolean" }).notNull(),
    // sign_in: the app's S256 code_challenge (auth/social/flow.ts): then only its verifier exchanges the code, not the browser's cookie
    exchangeChallenge: text("exchange_challenge"),
    returnTo: text("return_to").notNull(), // where the browser goes back to (allow-listed at start)
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    usedAt: integer("used_at", { mode: "timestamp_ms" }),
    grant: text(),
    grantUserId: text("grant_user_id").references(() => users.id, { onDelete: "cascade" }),
    linked: text({ mode: "json" }).$type<{ issuer: string; subject: string; email: string | null; emailVerified: boolean }>(),
    grantExpiresAt: integer("grant_expires_at", { mode: "timestamp_ms" }),
    exchangedAt: integer("exchanged_at", { mode: "timestamp_ms" }),
  },
  (t) => [uniqueIndex("oauth_flows_grant_unique").on(t.grant), index("oauth_flows_expires_at_idx").on(t.expiresAt)],
);

/**
 * A lowering of what the account requires that a mailbox alone asked for while TOTP was on
 * (auth/mail/recovery-holds.ts): the TOTP goes, and for a held reset the new password takes effect, only
 * at `dueAt` (RECOVERY_DELAY later), unless a sign-in with a second factor cancels it first (the row
 * goes). One row per account; the cron applies due rows and deletes them.
 */
export const recoveryHolds = sqliteTable(
  "recovery_holds",
  {
    userId: text("user_id")
      .primaryKey()
      .references(() => users.id, { onDelete: "cascade" }),
    kind: text({ enum: ["not_me", "reset"] }).notNull(), // a "this was not me" link, or a reset by mail
    totpEnabledAt: integer("totp_enabled_at", { mode: "timestamp_ms" }).notNull(), // the TOTP it removes, only while that one is on
    passwordHash: text("password_hash"), // a held reset's new password (null: TOTP removal only)
    mailbox: text(), // the address the reset link went to: verified when the reset applies
    requestedAt: integer("requested_at", { mode: "timestamp_ms" }).notNull(),
    dueAt: integer("due_at", { mode: "timestamp_ms" }).notNull(),
    appliedBy: text("applied_by"), // a random id of the cron run applying it: what that batch's later writes check
  },
  (t) => [index("recovery_holds_due_at_idx").on(t.dueAt)],
);

export type User = typeof users.$inferSelect;
export type Session = typeof sessions.$inferSelect;
export type Passkey = typeof passkeys.$inferSelect;
export type Identity = typeof identities.$inferSelect;
export type OAuthFlow = typeof oauthFlows.$inferSelect;
