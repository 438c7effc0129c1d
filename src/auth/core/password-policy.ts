import type { Config } from "../../config";

/**
 * The policy every new password passes (sign-up, change, reset, a guest's upgrade): its length (the
 * request schema), not among the most common passwords, none of the account's or the deployment's own
 * words, and not breached (Pwned Passwords by k-anonymity, PWNED_PASSWORDS). Throws a Refusal
 * (password_too_common, password_contains_context, password_breached); answers a warning where
 * PWNED_PASSWORDS is "warn". Knows nothing of HTTP. docs/passwords.md.
 */

/** What a new password's owner is known by: the words the password must not contain. */
export interface PasswordOwner {
  username: string | null;
  email: string | null;
}

export interface PasswordVerdict {
  /** Set where the password was accepted although a check found it wanting ("warn" mode). */
  warning?: "password_breached";
}

// TODO(issue 31, passwords helper): the common list, the context words and the range query.
export async function checkNewPassword(_config: Config, _password: string, _owner: PasswordOwner): Promise<PasswordVerdict> {
  return {};
}
