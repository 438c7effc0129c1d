import { z } from "@hono/zod-openapi";

/**
 * Request and response schemas: the single source of validation and of the OpenAPI document
 * (GET /openapi.json). Unknown request fields are stripped (z.object's default), so nothing a client
 * adds (roles, id, ...) is ever mass-assigned. `.openapi(...)` only adds documentation.
 */

// Control characters (C0, DEL, C1) have no place in any credential or name.
const noControlChars = (s: string) => !/\p{Cc}/u.test(s);
// Nor, in a name people read, invisible format characters (bidi overrides, zero-width joiners and
// spaces) or line and paragraph separators, which make one name pass for another.
const plainText = (s: string) => !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(s);

/** A name people read (an app on the consent page, an organization, an API key in a list and a mail): 1-100 plain characters. */
export const displayName = z
  .string({ error: "is required" })
  .trim()
  .min(1, "is required")
  .max(100, "at most 100 characters")
  .refine(plainText, "no control or invisible characters");

export const usernameSchema = z.string({ error: "is required" }).regex(/^[A-Za-z0-9_]{3,32}$/, "3-32 characters: letters, digits or underscore");

export const emailSchema = z.email("must be a valid email address").max(254, "at most 254 characters");

// A new password: its length is the whole of the composition policy (ASVS 6.2.5: no required letters,
// digits or symbols); the rest of the policy (common, context, breached) is auth/core/password-policy.ts.
export const passwordSchema = z
  .string({ error: "is required" })
  .min(8, "at least 8 characters")
  .max(128, "at most 128 characters")
  .refine(noControlChars, "must not contain control characters")
  .openapi({ description: "8-128 characters, any Unicode (NFC); not a common password, none of the account's or the service's own words, not breached" });

// Cookie mode (browser SPAs): the refresh token is set as an HttpOnly cookie instead of returned in JSON.
export const useCookie = z.boolean({ error: "must be true or false" }).optional();

export const registerSchema = z
  .object({
    username: usernameSchema.optional().openapi({ description: "optional: an account may have none (then `email` is required); set one later with PATCH /me" }),
    email: emailSchema.optional(),
    password: passwordSchema,
    use_cookie: useCookie,
  })
  // Something to sign in with besides the password: a username, or an address.
  .refine((b) => b.username !== undefined || b.email !== undefined, { path: ["email"], message: "is required without a username" })
  .openapi("RegisterRequest", { example: { username: "alice", email: "alice@example.com", password: "correct horse 42" } });

// Login bounds lengths but applies no policy: an old password that predates a policy must still work.
export const loginSchema = z
  .object({
    username: z
      .string({ error: "is required" })
      .min(1, "is required")
      .max(254, "at most 254 characters")
      .refine(noControlChars, "must not contain control characters")
      .openapi({ description: "username, or email when it contains @" }),
    password: z.string({ error: "is required" }).min(1, "is required").max(128, "at most 128 characters"),
    use_cookie: useCookie,
  })
  .openapi("LoginRequest", { example: { username: "alice", password: "correct horse 42", use_cookie: true } });

// Absent (or an empty body) means: use the refresh cookie. Any string goes through to a 401
// invalid_token (an access token sent here is a wrong token, not a malformed request).
// if_signed_in: a page load asking "is anyone signed in here?" gets 204 when no cookie came, not a
// 401 the browser would log as an error.
export const refreshSchema = z
  .object({
    refresh_token: z.string({ error: "must be a string" }).min(1, "is required").max(4096, "at most 4096 characters").optional(),
    if_signed_in: z.boolean({ error: "must be true or false" }).optional(),
  })
  .openapi("RefreshRequest", {
    description:
      "Empty (or no body) in cookie mode: the refresh cookie is used. With if_signed_in true and no refresh token at all, the answer is 204 (nobody is signed in on this browser) instead of 401.",
  });

const currentPassword = z.string({ error: "is required" }).min(1, "is required").max(128, "at most 128 characters");

// ---- Step-up and second factors (auth/core/ways-in.ts, auth/core/step-up.ts, auth/totp/mfa.ts, auth/passkeys/passkeys.ts) ----

const totpCode = z
  .string({ error: "must be a string" })
  .regex(/^\d{6}$/, "6 digits")
  .openapi({ description: "the 6-digit code the authenticator app shows", example: "123456" });
const recoveryCode = z
  .string({ error: "must be a string" })
  .max(40, "is not a recovery code")
  .openapi({ description: "one of the recovery codes handed out when TOTP was enabled (single use)", example: "k7qp-2m4x-zhta-vw3e-r5dn-q6ua" });
const proofFields = { code: totpCode.optional(), recovery_code: recoveryCode.optional() };
/** A TOTP code or a recovery code: exactly one. */
const oneProof: [(v: { code?: string; recovery_code?: string }) => boolean, { message: string; path: string[] }] = [
  (v) => (v.code === undefined) !== (v.recovery_code === undefined),
  { message: "send code or recovery_code (one of them)", path: ["code"] },
];
/** At most one of the two (needed while TOTP is on). */
export const notBoth: [(v: { code?: string; recovery_code?: string }) => boolean, { message: string; path: string[] }] = [
  (v) => v.code === undefined || v.recovery_code === undefined,
  { message: "send code or recovery_code, not both", path: ["code"] },
];
/**
 * A step-up's fields: the password, and while TOTP is on a code or a recovery code. The password is
 * optional here only for accounts without one (social sign-ups: a recent sign-in instead); an account
 * with a password that sends none gets 400 from the step-up itself (auth/core/step-up.ts).
 */
export const stepUpFields = { current_password: currentPassword.optional(), ...proofFields };
export const stepUpExample = { current_password: "correct horse 42", code: "123456" };

export const freshCheckSchema = z
  .object(stepUpFields)
  .refine(...notBoth)
  .openapi("FreshCheck", { description: "the step-up: the password, and (while TOTP is on) a code or a recovery code", example: stepUpExample });

export const passwordChangeSchema = z
  .object({ ...stepUpFields, current_password: currentPassword, new_password: passwordSchema })
  .refine(...notBoth)
  .openapi("PasswordChangeRequest", { example: { current_password: "correct horse 42", new_password: "battery staple 43" } });

const linkToken = z
  .string({ error: "is required" })
  .min(1, "is required")
  .max(100, "is not a valid link token")
  .openapi({ description: "the token from the mailed link (the URL fragment)" });

/** PATCH /me: set (or change) the username of an account; one without may add it later. */
export const profilePatchSchema = z.object({ username: usernameSchema }).openapi("ProfilePatch", { example: { username: "alice" } });

export const linkTokenSchema = z.object({ token: linkToken }).openapi("LinkToken");
/** A link that proves an address for an account (verification, address change): with the account's Bearer token, or its password. */
export const addressProofSchema = z
  .object({
    token: linkToken,
    password: currentPassword.optional().openapi({ description: "the account's password, unless the request carries a Bearer token of that account" }),
  })
  .openapi("AddressProof", { example: { token: "the-token-from-the-link", password: "correct horse 42" } });
export const forgotSchema = z.object({ email: emailSchema }).openapi("ForgotPassword", { example: { email: "alice@example.com" } });
export const verifyRequestSchema = z
  .object({ email: emailSchema.optional().openapi({ description: "without a Bearer token: the address to mail a new link to" }) })
  .openapi("VerificationRequest", { example: { email: "alice@example.com" } });
export const resetSchema = z
  .object({ token: linkToken, new_password: passwordSchema, ...proofFields })
  .refine(...notBoth)
  .openapi("ResetPassword", { description: "code or recovery_code only when the answer asks for it (TOTP turned on after the address was confirmed)" });
export const emailChangeSchema = z
  .object({ new_email: emailSchema, ...stepUpFields })
  .refine(...notBoth)
  .openapi("EmailChange", { example: { new_email: "alice@example.org", current_password: "correct horse 42" } });
export const deleteMeSchema = z
  .object(stepUpFields)
  .refine(...notBoth)
  .openapi("DeleteAccount", { example: { current_password: "correct horse 42" } });

export const totpSetupRequestSchema = z
  .object({ current_password: currentPassword.optional() })
  .openapi("TotpSetupRequest", { example: { current_password: "correct horse 42" } });
export const totpEnableSchema = z.object({ code: totpCode }).openapi("TotpEnable", { example: { code: "123456" } });
export const totpDisableSchema = z
  .object(stepUpFields)
  .refine(...oneProof)
  .openapi("TotpDisable", { example: { current_password: "correct horse 42", code: "123456" } });
export const loginMfaSchema = z
  .object({
    challenge: z
      .string({ error: "is required" })
      .min(1, "is required")
      .max(100, "is not a challenge")
      .openapi({ description: "from the answer of POST /login" }),
    ...proofFields,
    use_cookie: useCookie,
  })
  .refine(...oneProof)
  .openapi("LoginMfa", { example: { challenge: "q9G2v0pXl3d2Hh3vYq1bU0sXxM4nN7rKk2aZb8cD5eQ", code: "123456" } });

// WebAuthn JSON from the browser (navigator.credentials, e.g. through @simplewebauthn/browser). The
// library checks the inside; this only bounds the size and the outline.
const b64url = (max: number) =>
  z
    .string({ error: "must be a string" })
    .max(max, "is too long")
    .regex(/^[A-Za-z0-9_-]*$/, "must be base64url");
const credentialOutline = {
  id: b64url(1400),
  rawId: b64url(1400),
  type: z.literal("public-key", { error: 'must be "public-key"' }),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
};
export const passkeyRegisterSchema = z
  .object({
    response: z
      .object({
        ...credentialOutline,
        response: z
          .object({ clientDataJSON: b64url(4000), attestationObject: b64url(8000), transports: z.array(z.string().max(32)).max(10).optional() })
          .passthrough(),
      })
      .openapi({ description: "the RegistrationResponseJSON navigator.credentials.create() produced" }),
    name: z
      .string()
      .max(64, "at most 64 characters")
      .refine(plainText, "must not contain control, format (bidi, zero-width) or separator characters")
      .optional()
      .openapi({ description: "a label for the list, e.g. the device" }),
  })
  .openapi("PasskeyRegistration");
export const passkeyLoginSchema = z
  .object({
    response: z
      .object({
        ...credentialOutline,
        response: z
          .object({ clientDataJSON: b64url(4000), authenticatorData: b64url(4000), signature: b64url(1000), userHandle: b64url(200).optional() })
          .passthrough(),
      })
      .openapi({ description: "the AuthenticationResponseJSON navigator.credentials.get() produced" }),
    use_cookie: useCookie,
  })
  .openapi("PasskeySignIn");
export const passkeyIdSchema = z.object({
  id: z
    .string()
    .max(1400, "is not a passkey id")
    .openapi({ param: { name: "id", in: "path" } }),
});

const role = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, "roles are 1-32 lower-case letters, digits or underscores");
export const adminUserPatchSchema = z
  .object({
    roles: z.array(role).min(1, "at least one role").max(20, "at most 20 roles").optional(),
    disabled: z.boolean({ error: "must be true or false" }).optional(),
    ...stepUpFields,
  })
  .refine((v) => v.roles !== undefined || v.disabled !== undefined, { message: "send roles, disabled, or both", path: ["_"] })
  .refine(...notBoth)
  .openapi("AdminUserChange", {
    description: "a change of roles takes the acting admin's step-up (change_roles): the password, and a code while TOTP is on",
    example: { roles: ["user", "admin"], current_password: "correct horse 42" },
  });

export const kidSchema = z.object({
  kid: z
    .string()
    .max(64, "is not a key id")
    .openapi({ param: { name: "kid", in: "path" } }),
});

export const userIdSchema = z.object({
  id: z
    .string()
    .max(64, "is not a user id")
    .openapi({ param: { name: "id", in: "path" } }),
});

export const sessionIdSchema = z.object({
  id: z
    .string()
    .max(64, "is not a session id")
    .openapi({ param: { name: "id", in: "path" }, example: "6f1c0c9e-6d0a-4a57-9d52-0b3f5c3f1f2e" }),
});

const cursor = z.string().max(200, "is not a valid cursor").optional();
const limit = (fallback: number) =>
  z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(1, "at least 1").max(100, "at most 100").default(fallback);

export const listUsersQuerySchema = z.object({ cursor, limit: limit(20) });

export const listSessionsQuerySchema = z.object({ cursor, limit: limit(20) });

export const listAuditQuerySchema = z.object({
  user_id: z.string().max(64, "is not a user id").optional(),
  cursor,
  limit: limit(50),
});
