import { z } from "@hono/zod-openapi";
import { takesEffectAt, tokenFields, userSchema } from "./response-schemas";

/** The answers of the password policy (docs/passwords.md) and of Turnstile (docs/security.md#turnstile). */

/** A new password accepted although it appears in known breaches (PWNED_PASSWORDS "warn"): tell the person. */
export const passwordWarning = {
  password_warning: z
    .literal("password_breached")
    .optional()
    .openapi({ description: 'only with PWNED_PASSWORDS "warn": the new password was accepted but appears in known data breaches; suggest another' }),
};

export const registeredSchema = z.object({ user: userSchema, ...tokenFields, ...passwordWarning }).openapi("Registered");
export const registeredUnverifiedSchema = z.object({ user: userSchema, ...passwordWarning }).openapi("RegisteredUnverified");
export const passwordChangedSchema = z.object({ message: z.string(), sessions_revoked: z.number().int(), ...passwordWarning }).openapi("PasswordChanged");

export const resetDoneSchema = z
  .object({
    message: z.string(),
    passkeys_removed: z.number().int(),
    identities_removed: z.number().int(),
    totp_removed: z.boolean(),
    takes_effect_at: takesEffectAt,
    ...passwordWarning,
  })
  .openapi("PasswordReset", {
    description:
      "every session ended; the passkeys removed, and the linked identities that do not vouch for this address. Where TOTP was set up before the address was confirmed, the whole reset is held (takes_effect_at) and nothing is removed yet",
  });

export const turnstileSchema = z
  .object({
    site_key: z.string().nullable().openapi({ description: "the widget's site key (TURNSTILE_SITE_KEY); null while Turnstile is off (no TURNSTILE_SECRET)" }),
  })
  .openapi("Turnstile");
