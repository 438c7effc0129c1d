import { z } from "zod";
import { fromBase64Url } from "./encoding";

/**
 * Settings of the ways in that need no password and of the password policy, read with the rest of the
 * config (config.ts merges these fields). Docs: docs/configuration.md.
 */

const seconds = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

// An unset or empty secret is "absent", not a short string.
const absentIfEmpty = (min: number) => z.preprocess((v) => (v === "" ? undefined : v), z.string().min(min).optional());

const list = z
  .string()
  .default("")
  .transform((s) => s.split(/[\s,]+/).filter(Boolean));

export const accessFields = {
  // Sign-in by mail (docs/mail-sign-in.md): one message with a link and a short code. "off": 404.
  MAIL_SIGN_IN: z.enum(["on", "off"]).default("on"),
  // At most 10 minutes: an out-of-band code lives no longer (ASVS 6.5.5).
  MAIL_SIGN_IN_TTL: seconds(600, 120, 600),
  MAIL_CODE_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(5),
  // Guests (docs/guests.md): anonymous accounts an app may start; removed after this long unused.
  GUESTS: z.enum(["on", "off"]).default("off"),
  GUEST_IDLE_TTL: seconds(2_592_000, 3_600, 31_536_000),
  // Breached passwords (docs/passwords.md): the Pwned Passwords range API by k-anonymity; "warn" accepts
  // and says so, "refuse" refuses; an answer slower than the timeout (ms) fails open and is logged.
  PWNED_PASSWORDS: z.enum(["off", "warn", "refuse"]).default("refuse"),
  PWNED_PASSWORDS_URL: z.url().default("https://api.pwnedpasswords.com/range/"),
  PWNED_PASSWORDS_TIMEOUT_MS: z.coerce.number().int().min(100).max(10_000).default(1_500),
  // Words of this deployment refused inside passwords, besides the documented built-in list.
  PASSWORD_CONTEXT_WORDS: list,
  // Cloudflare Turnstile on sign-up, mail sign-in, forgot-password and guest creation: on when the
  // secret TURNSTILE_SECRET is set; the site key is published for the app's widget.
  TURNSTILE_SECRET: absentIfEmpty(1),
  TURNSTILE_SITE_KEY: z.string().default(""),
  TURNSTILE_VERIFY_URL: z.url().default("https://challenges.cloudflare.com/turnstile/v0/siteverify"),
  // A refresh token unused this long is refused (the session's idle timeout); REFRESH_TOKEN_TTL stays the absolute one.
  REFRESH_IDLE_TTL: seconds(1_209_600, 900, 31_536_000), // and longer than ACCESS_TOKEN_TTL (config.ts)
  // A second factor every account ("all") or accounts with one of these roles ("roles:admin,ops") must enrol.
  REQUIRE_MFA: z
    .string()
    .default("off")
    .refine((s) => s === "off" || s === "all" || /^roles:[A-Za-z0-9_:-]+(,[A-Za-z0-9_:-]+)*$/.test(s), 'must be "off", "all" or "roles:<role>,<role>"'),
  // The longest a social sign-in may rest on the provider's own authentication (seconds since it, OpenID's max_age).
  SOCIAL_MAX_AGE: seconds(86_400, 300, 2_592_000),
  // Key rotation (docs/crypto.md): the previous pepper and TOTP sealing key, accepted while data moves to the new ones.
  PASSWORD_PEPPER_PREVIOUS: absentIfEmpty(16),
  // The previous pepper may be shorter than PASSWORD_PEPPER's floor (an older deployment's); the MFA key has one format.
  MFA_ENCRYPTION_KEY_PREVIOUS: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .refine((s) => fromBase64Url(s)?.length === 32, "must be 32 random bytes, base64url (the MFA_ENCRYPTION_KEY it replaces)")
      .optional(),
  ),
};

/** The secrets among them: never in wrangler.toml's [vars], so the deploy check omits them. */
export const ACCESS_SECRETS = { TURNSTILE_SECRET: true, PASSWORD_PEPPER_PREVIOUS: true, MFA_ENCRYPTION_KEY_PREVIOUS: true } as const;
