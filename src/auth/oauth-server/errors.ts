import type { OAUTH_ERROR_CODES } from "../../response-schemas-oauth";

/**
 * The authorization server's refusals, in the protocol's own words (RFC 6749 5.2, RFC 7009, RFC 8707,
 * OpenID Connect): clients read `error` and `error_description`, not the API's envelope. Where the
 * request came through a browser with a verified redirect_uri, the refusal travels there instead.
 */
export type OAuthErrorCode = (typeof OAUTH_ERROR_CODES)[number];

export class OAuthRefusal extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    /** 400 unless said: 401 for a client that failed to authenticate (RFC 6749 5.2), 429, 503. */
    readonly status: 400 | 401 | 403 | 429 | 503 = error === "invalid_client" || error === "invalid_token" ? 401 : 400,
  ) {
    super(description);
    this.name = "OAuthRefusal";
  }
}
