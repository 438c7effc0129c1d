import type * as oauth from "oauth4webapi";

/**
 * What a provider's answer says about the person, as far as this API trusts it: the checks on an
 * ID token that oauth4webapi leaves to the caller, whether an address is vouched for, and the
 * profile read from the claims (auth/social/protocol.ts runs the protocol, auth/social/kinds/ hold
 * each kind's quirks).
 */

/** How far a provider's clock may run ahead of ours (an ID token's `iat`). */
const IAT_SKEW_S = 60;
/** The longest ID token lifetime accepted: providers issue them for minutes to an hour; a day is far beyond any. */
const MAX_ID_TOKEN_LIFETIME_S = 86_400;

/** Who signed in at the provider, as far as this API trusts it. */
export interface Profile {
  issuer: string;
  subject: string;
  /** An address, and whether the provider vouches that its owner controls it (only then is it copied to a new account). */
  email: string | null;
  emailVerified: boolean;
  /** Hints for a new account's username. */
  username: string | null;
  name: string | null;
}

/** Why a callback did not yield a profile: a code the app can show (oauth_error), and what is logged. */
export class ProviderFailure extends Error {
  constructor(
    readonly code: "access_denied" | "provider_error" | "invalid_response" | "provider_unreachable",
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = "ProviderFailure";
  }
}

/**
 * What oauth4webapi leaves to the caller (module comment): `azp` with one audience too, `iat`, the
 * lifetime; and with `maxAge` (SOCIAL_MAX_AGE), an `auth_time` given must be within it.
 */
export function checkIdToken(claims: oauth.IDToken, clientId: string, now: Date, maxAge?: number) {
  if (claims.azp !== undefined && claims.azp !== clientId) throw new ProviderFailure("invalid_response", "ID token authorized for another party (azp)");
  if (claims.iat > now.getTime() / 1000 + IAT_SKEW_S) throw new ProviderFailure("invalid_response", "ID token issued in the future (iat)");
  if (claims.exp - claims.iat > MAX_ID_TOKEN_LIFETIME_S) throw new ProviderFailure("invalid_response", "ID token lifetime over a day (exp - iat)");
  if (maxAge === undefined || claims.auth_time === undefined) return;
  if (typeof claims.auth_time !== "number" || claims.auth_time + maxAge < now.getTime() / 1000 - IAT_SKEW_S)
    throw new ProviderFailure("invalid_response", "the provider's authentication is older than SOCIAL_MAX_AGE (auth_time)");
}

export const text = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : null);

/**
 * Who signed in, from OpenID claims. `vouched`: whether the provider vouches that the address's
 * owner controls it; by default OpenID's email_verified, and only the boolean `true` (a string
 * "true", 1 or "1" is not what OpenID defines). A kind whose provider says it otherwise passes its
 * own (auth/social/kinds/).
 */
export function openIdProfile(issuer: string, subject: string, claims: Record<string, unknown>, vouched = claims.email_verified === true): Profile {
  const email = text(claims.email)?.toLowerCase() ?? null;
  return { issuer, subject, email, emailVerified: email !== null && vouched, username: text(claims.preferred_username), name: text(claims.name) };
}
