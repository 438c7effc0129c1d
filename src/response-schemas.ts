import { z } from "@hono/zod-openapi";
import { PROVIDER_KINDS } from "./config-providers";
import { ACTIONS } from "./step-up-actions";

/**
 * Response schemas: the shapes of every answer (GET /openapi.json documents them; the tests check
 * each answer against them; client/ takes its types from them). Requests are in schemas.ts.
 */

/** The contract's error codes (docs/api.md, and /openapi.json); errors.ts maps each to its HTTP status. */
export const ERROR_CODES = [
  "invalid_request",
  "validation_failed",
  "invalid_credentials",
  "invalid_token",
  "forbidden",
  "registration_closed",
  "account_disabled",
  "email_unverified",
  "invalid_link",
  "invalid_mfa_code",
  "invalid_challenge",
  "passkey_rejected",
  "too_many_passkeys",
  "scope_not_allowed",
  "too_many_api_keys",
  "not_found",
  "method_not_allowed",
  "username_taken",
  "email_taken",
  "mfa_already_enabled",
  "mfa_not_enabled",
  "last_admin",
  "last_way_in",
  "account_exists",
  "account_proof_required",
  "identity_in_use",
  "password_not_set",
  "reauthentication_required",
  "invalid_grant",
  "unknown_provider",
  "provider_unavailable",
  "key_not_ready",
  "keys_not_rotating",
  "org_slug_taken",
  "last_owner",
  "too_many_organizations",
  "already_member",
  "too_many_invitations",
  "invitation_wrong_account",
  "invalid_mail_code",
  "password_too_common",
  "password_contains_context",
  "password_breached",
  "turnstile_required",
  "turnstile_failed",
  "turnstile_unavailable",
  "guest_not_allowed",
  "mfa_enrolment_required",
  "mfa_required",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "internal_error",
  "service_unavailable",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const errorSchema = z
  .object({
    error: z.enum(ERROR_CODES),
    message: z.string(),
    fields: z.record(z.string(), z.string()).optional().openapi({ description: "on validation_failed: the first problem per field" }),
  })
  .openapi("Error", { example: { error: "validation_failed", message: "Some fields are invalid", fields: { password: "at least 8 characters" } } });

export const userSchema = z
  .object({
    id: z.string().openapi({ description: "opaque, non-sequential" }),
    username: z.string().nullable().openapi({ description: "null: the account signed up without one (by mail, a provider, a passkey or as a guest)" }),
    email: z.string().nullable(),
    email_verified: z.boolean(),
    roles: z.array(z.string()),
    created_at: z.iso.datetime(),
  })
  .openapi("User", {
    example: {
      id: "0b6f2a4e-8c1d-4f5e-9a7b-2c3d4e5f6a7b",
      username: "alice",
      email: "alice@example.com",
      email_verified: true,
      roles: ["user"],
      created_at: "2026-11-23T10:00:00.000Z",
    },
  });

const accessToken = z.string().openapi({ description: "ES256 JWT (typ at+jwt); send as Authorization: Bearer" });
export const tokenFields = {
  access_token: accessToken,
  refresh_token: z.string().optional().openapi({ description: "absent in cookie mode, where it is the refresh_token cookie" }),
  token_type: z.literal("Bearer"),
  expires_in: z.number().int().openapi({ description: "seconds until the access token expires", example: 900 }),
};

export const tokensSchema = z.object(tokenFields).openapi("Tokens");
export const signedInSchema = z.object({ user: userSchema, ...tokenFields }).openapi("SignedIn");

export const mfaChallengeSchema = z
  .object({
    mfa_required: z.literal(true),
    challenge: z.string().openapi({ description: "send it to POST /login/mfa with a code; single use" }),
    expires_in: z.number().int().openapi({ description: "seconds the challenge stays usable", example: 300 }),
    methods: z.array(z.enum(["totp", "recovery_code"])),
  })
  .openapi("MfaChallenge", { description: "The password was right and the account has TOTP on: the second step comes next." });

export const totpSetupSchema = z
  .object({
    secret: z.string().openapi({ description: "base32, for typing into an authenticator app" }),
    otpauth_uri: z.string().openapi({ description: "otpauth://totp/... for a QR code" }),
  })
  .openapi("TotpSetup");
export const recoveryCodesSchema = z
  .object({ message: z.string(), recovery_codes: z.array(z.string()).openapi({ description: "shown once: each signs in once in place of a code" }) })
  .openapi("RecoveryCodes");

export const passkeySchema = z
  .object({
    id: z.string().openapi({ description: "the credential id (base64url)" }),
    name: z.string(),
    created_at: z.iso.datetime(),
    last_used_at: z.iso.datetime().nullable(),
    backed_up: z.boolean().openapi({ description: "synced by a passkey provider (multi-device)" }),
  })
  .openapi("Passkey");
export const passkeysSchema = z.object({ passkeys: z.array(passkeySchema) }).openapi("Passkeys");
export const passkeyOptionsSchema = z
  .object({ options: z.record(z.string(), z.unknown()).openapi({ description: "pass to navigator.credentials (as optionsJSON to @simplewebauthn/browser)" }) })
  .openapi("PasskeyOptions");

export const factorsSchema = z
  .object({
    totp: z.boolean(),
    recovery_codes_left: z.number().int(),
    passkeys: z.number().int(),
  })
  .openapi("Factors", { description: "which second factors and passkeys the account has; never a secret" });

const wayInSchema = z
  .object({
    kind: z.enum(["password", "email", "totp", "passkey", "identity"]),
    added_at: z.iso.datetime().nullable().openapi({ description: "null: before this was recorded" }),
    added_by_session: z.string().nullable().openapi({ description: "the session that added it (null: a mailed link, or sign-up without a session)" }),
    by_this_session: z.boolean(),
    address: z.string().optional().openapi({ description: "email: the address; identity: the address the provider gave, if any" }),
    verified: z.boolean().optional().openapi({ description: "email: proved by a mailed link" }),
    recovery_codes_left: z.number().int().optional().openapi({ description: "totp" }),
    id: z.string().optional().openapi({ description: "passkey: its id (DELETE /passkeys/{id}); identity: its id (DELETE /me/identities/{id})" }),
    provider: z.string().optional().openapi({ description: "identity: the provider's id (GET /oauth/providers)" }),
    name: z.string().optional().openapi({ description: "passkey" }),
    last_used_at: z.iso.datetime().nullable().optional().openapi({ description: "passkey, identity" }),
    backed_up: z.boolean().optional().openapi({ description: "passkey: synced by a passkey provider" }),
  })
  .openapi("WayIn");

const proofKind = z.enum(["password", "second_factor", "new_totp_code", "mailbox", "recent_sign_in"]);
export const securitySchema = z
  .object({
    ways_in: z.array(wayInSchema),
    session: z
      .object({
        id: z.string(),
        auth_time: z.iso.datetime(),
        amr: z.array(z.string()).openapi({ description: "RFC 8176: pwd, otp, hwk, swk, mfa; fed for a social sign-in" }),
      })
      .openapi({ description: "this session: when and how its sign-in was proved (the access token's auth_time and amr)" }),
    step_up: z
      .record(z.enum(ACTIONS), z.array(proofKind))
      .openapi({ description: "each sensitive action and the proofs to send with it, for this account now (second_factor: a code or a recovery code)" }),
  })
  .openapi("Security", { description: "The account's ways in, this session's assurance, and the step-up table as it applies now" });

export const takesEffectAt = z.iso.datetime().optional().openapi({
  description:
    "Held: while TOTP is on, a mailbox alone lowers nothing at once. At this time TOTP goes (and, for a reset, the new password takes effect), unless a sign-in with a second factor cancels it first",
});

export const revokedWayInSchema = z
  .object({
    message: z.string(),
    removed: z.boolean().openapi({ description: "false: it was gone already, or (TOTP) it is held; every session ended either way" }),
    way: z.string(),
    takes_effect_at: takesEffectAt,
  })
  .openapi("WayInRevoked");

export const adminUserSchema = z
  .object({ user: userSchema, disabled: z.boolean(), factors: factorsSchema.optional().openapi({ description: "on GET /admin/users/{id}" }) })
  .openapi("AdminUser");

export const messageSchema = z.object({ message: z.string() }).openapi("Message");
export const revokedCountSchema = z.object({ message: z.string(), sessions_revoked: z.number().int() }).openapi("SessionsRevoked");
export const cutOffSchema = z.object({ message: z.string(), signed_in_before: z.iso.datetime() }).openapi("SessionsCutOff");

export const sessionSchema = z
  .object({
    id: z.string(),
    created_at: z.iso.datetime(),
    last_used_at: z.iso.datetime(),
    expires_at: z.iso.datetime(),
    user_agent: z.string().nullable(),
    current: z.boolean().openapi({ description: "the session of the access token that asked" }),
  })
  .openapi("Session");

const nextCursor = z.string().nullable().openapi({ description: "pass as cursor for the next page; null on the last" });
export const sessionsPageSchema = z.object({ sessions: z.array(sessionSchema), next_cursor: nextCursor }).openapi("SessionsPage");
export const usersPageSchema = z.object({ users: z.array(userSchema), next_cursor: nextCursor }).openapi("UsersPage");

export const auditEventSchema = z
  .object({
    id: z.number().int(),
    created_at: z.iso.datetime(),
    event: z.string(),
    user_id: z.string().nullable(),
    session_id: z.string().nullable(),
    request_id: z.string().nullable(),
    ip: z.string().nullable(),
    detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).nullable(),
  })
  .openapi("AuditEvent");
export const auditPageSchema = z.object({ events: z.array(auditEventSchema), next_cursor: nextCursor }).openapi("AuditPage");

export const protectedSchema = z.object({ message: z.string(), user_id: z.string(), username: z.string().nullable() }).openapi("Protected");
export const meSchema = z.object({ user: userSchema }).openapi("Me");
export const meWithFactorsSchema = z.object({ user: userSchema, factors: factorsSchema }).openapi("MeWithFactors");
export const healthSchema = z.object({ status: z.literal("ok") }).openapi("Health");
export const jwksSchema = z
  .object({ keys: z.array(z.object({ kty: z.string(), crv: z.string(), x: z.string(), y: z.string(), kid: z.string(), alg: z.string(), use: z.string() })) })
  .openapi("JWKS");

const time = z.iso.datetime().nullable();

export const signingKeySchema = z
  .object({
    kid: z.string(),
    state: z.enum(["next", "current", "previous", "retired"]),
    origin: z.enum(["generated", "imported"]).openapi({ description: "imported: the JWT_PRIVATE_KEY the ring started from" }),
    created_at: z.iso.datetime(),
    published_at: time.openapi({ description: "when the mirror every location reads first showed it" }),
    activated_at: time.openapi({ description: "when it began to sign" }),
    deactivated_at: time.openapi({ description: "when it stopped signing" }),
    retire_after: time.openapi({ description: "a previous key leaves the JWKS after this" }),
    retired_at: time,
    retired_reason: z.enum(["scheduled", "emergency"]).nullable(),
  })
  .openapi("SigningKey");

export const keyRingSchema = z
  .object({
    keys: z.array(signingKeySchema),
    windows: z
      .object({
        publish_for: z.number().int().openapi({ description: "seconds a next key is published before it may sign" }),
        keep_for: z.number().int().openapi({ description: "seconds a previous key keeps verifying after it stopped signing" }),
        rotate_every: z.number().int().openapi({ description: "seconds a key signs before the cron turns the ring" }),
      })
      .openapi({ description: "docs/design.md, Signing keys" }),
    rotated: z.object({ from: z.string(), to: z.string() }).optional(),
    retired: z.array(z.string()).optional(),
    message: z.string().optional(),
  })
  .openapi("KeyRing");

const providerSchema = z.object({
  id: z.string().openapi({ description: "GET /oauth/{id}/start" }),
  name: z.string().openapi({ description: "the button label" }),
  kind: z.enum(PROVIDER_KINDS),
});
export const providersSchema = z.object({ providers: z.array(providerSchema) }).openapi("Providers");

export const linkStartSchema = z
  .object({ url: z.string().openapi({ description: "open it in the browser (a top-level navigation): it goes on to the provider" }) })
  .openapi("IdentityLinkStart");

export const linkedSchema = z
  .object({ linked: z.object({ id: z.string(), provider: z.string() }) })
  .openapi("IdentityLinked", { description: "the identity now linked to the account" });
