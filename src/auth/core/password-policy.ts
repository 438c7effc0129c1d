import type { Config } from "../../config";
import { COMMON_PASSWORDS } from "./common-passwords-list";
import { Refusal } from "./errors";
import { containsContextWord, type PasswordOwner } from "./password-context";
import { breachCount } from "./pwned-passwords";

/**
 * The policy every new password passes (sign-up, change, reset, a guest's upgrade): its length (the
 * request schema: 8-128 characters, no composition rules), not among the most common passwords, none
 * of the account's or the deployment's own words, and not breached (Pwned Passwords by k-anonymity,
 * PWNED_PASSWORDS). The local checks run first: the range query is spent only on a password they
 * accept. Throws a Refusal (password_too_common, password_contains_context, password_breached);
 * answers a warning where PWNED_PASSWORDS is "warn". Knows nothing of HTTP. docs/passwords.md.
 */

export type { PasswordOwner };

export interface PasswordVerdict {
  /** Set where the password was accepted although a check found it wanting ("warn" mode). */
  warning?: "password_breached";
}

// Built on the first new password an isolate sees, not at start-up: most requests never set one.
let common: Set<string> | undefined;

/** Whether the password is one of the shipped most common ones (case-insensitive, NFC). */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(COMMON_PASSWORDS.split("\n"));
  return common.has(password.normalize("NFC").toLowerCase());
}

export async function checkNewPassword(config: Config, password: string, owner: PasswordOwner, requestId?: string): Promise<PasswordVerdict> {
  if (isCommonPassword(password)) throw new Refusal("password_too_common");
  if (containsContextWord(config, password, owner)) throw new Refusal("password_contains_context");
  if (config.PWNED_PASSWORDS === "off") return {};
  const count = await breachCount(config, password, requestId);
  // null: the range API could not say, and the check fails open (logged by breachCount).
  if (!count) return {};
  if (config.PWNED_PASSWORDS === "refuse") throw new Refusal("password_breached");
  return { warning: "password_breached" };
}
