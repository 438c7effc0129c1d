/**
 * Typed errors of the auth flows that carry more than a contract code. They know nothing of HTTP:
 * errors.ts turns each into its answer.
 */

/** Retry after `retryAfter` seconds (an account lock, or too many checks in flight): 429 rate_limited. */
export class TooManyAttempts extends Error {
  constructor(
    readonly retryAfter: number,
    message: string,
  ) {
    super(message);
    this.name = "TooManyAttempts";
  }
}

/** A revocation is recorded in D1 but its KV entry could not be written: 503, and a retry completes it. */
export class RevocationIncomplete extends Error {
  constructor(cause: unknown) {
    super("the revocation could not be written to KV", { cause });
    this.name = "RevocationIncomplete";
  }
}
