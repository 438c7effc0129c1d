import type { ErrorCode } from "../../response-schemas";

/**
 * The failures of the auth flows. They know nothing of HTTP: a contract code (and what goes with it),
 * which errors.ts alone turns into a status, headers and the JSON answer.
 */

/** The flow refuses: a contract code, an explanation for the client (else the code's default), and per-field problems. */
export class Refusal extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly explanation?: string,
    readonly fields?: Record<string, string>,
  ) {
    super(explanation ?? code);
    this.name = "Refusal";
  }
}

/** The account behind a valid access token was deleted since: as good as an invalid token. */
export const userGone = () => new Refusal("invalid_token", "The user behind this token no longer exists");

/** The session behind a valid access token has ended (logged out, revoked, its budget spent). */
export const sessionEnded = () => new Refusal("invalid_token", "This session has ended");

/** Retry after `retryAfter` seconds (an account lock, too many checks in flight, a spent budget): rate_limited. */
export class TooManyAttempts extends Refusal {
  constructor(
    readonly retryAfter: number,
    message: string,
  ) {
    super("rate_limited", message);
    this.name = "TooManyAttempts";
  }
}

/** A revocation (or a key ring change) is recorded in D1 but its KV entry could not be written: 503, and a retry completes it. */
export class RevocationIncomplete extends Error {
  constructor(cause: unknown) {
    super("the revocation could not be written to KV", { cause });
    this.name = "RevocationIncomplete";
  }
}
