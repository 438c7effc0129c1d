/**
 * What an app learns of the user, by scope (OpenID Connect Core 5.4): `profile` the username,
 * `email` the address and whether it was proved. In the ID token and at /oauth2/userinfo alike.
 */
export interface ClaimSource {
  id: string;
  username: string;
  email: string | null;
  emailVerifiedAt: Date | null;
}

export type ScopedClaims = {
  preferred_username?: string;
  email?: string;
  email_verified?: boolean;
};

export function claimsFor(scope: string[], user: ClaimSource): ScopedClaims {
  const claims: ScopedClaims = {};
  if (scope.includes("profile") && user.username) claims.preferred_username = user.username; // NO_USERNAME: none to give
  if (scope.includes("email") && user.email) {
    claims.email = user.email;
    claims.email_verified = user.emailVerifiedAt !== null;
  }
  return claims;
}
