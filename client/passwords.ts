import type { ErrorCode } from "./types.js";

/**
 * What the password policy answers (docs/passwords.md), as words for a person: the refusals of a new
 * password (sign-up, change, reset) and the warning a "warn" deployment adds to an accepted one.
 */

/** On an accepted new password (PWNED_PASSWORDS "warn"): it appears in known data breaches. */
export type PasswordWarning = "password_breached";

const PROBLEMS: Partial<Record<ErrorCode, string>> = {
  password_too_common: "This password is one of the most common ones: choose another.",
  password_contains_context: "This password contains your username, your address or the name of this service: choose another.",
  password_breached: "This password appears in known data breaches: choose one you have never used elsewhere.",
};

/** A sentence for a person about a refused (or, for password_breached, a warned) new password; undefined for any other code. */
export function passwordProblem(code: string): string | undefined {
  return PROBLEMS[code as ErrorCode];
}
