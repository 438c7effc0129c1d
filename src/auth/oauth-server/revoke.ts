import { grantByRefreshHash, grantUser } from "../../db/oauth-grants";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { hashRefreshToken, REFRESH_TOKEN_FORMAT } from "../core/refresh-tokens";
import { activeKeys } from "../core/signing-keys";
import { claimsFor } from "./claims";
import { OAuthRefusal } from "./errors";
import { endGrant } from "./token";
import { verifyAppAccessToken } from "./tokens";

/**
 * Revocation (RFC 7009) and userinfo (OpenID Connect Core 5.3): the two endpoints that take a token
 * an app holds. Knows nothing of HTTP.
 */

/**
 * Ends the grant behind a refresh token or an access token of this client. Anything else (unknown,
 * expired, another client's, a client_credentials token) changes nothing and is answered the same
 * (RFC 7009 2.2), so revocation tells nobody which tokens exist.
 */
export async function revokeToken(deps: Deps, client: OAuthClient, token: string): Promise<void> {
  if (REFRESH_TOKEN_FORMAT.test(token)) {
    const grant = await grantByRefreshHash(deps.db, await hashRefreshToken(token), client.id);
    if (grant) await endGrant(deps, grant.id, "revoked_by_client");
    return;
  }
  if (token.length > 4096) return;
  const claims = await verifyAppAccessToken(deps.config, await activeKeys(deps), token, null);
  if (claims?.sid && claims.client_id === client.id) await endGrant(deps, claims.sid, "revoked_by_client");
}

/** The user an access token for this issuer stands for, with the claims its scope allows. */
export async function userInfo(deps: Deps, token: string | undefined): Promise<{ sub: string } & ReturnType<typeof claimsFor>> {
  const { config } = deps;
  const invalid = () => new OAuthRefusal("invalid_token", "The access token is invalid, expired or revoked");
  if (!token || token.length > 4096) throw invalid();
  const claims = await verifyAppAccessToken(config, await activeKeys(deps), token, config.ISSUER);
  if (!claims?.sid) throw invalid();
  if (!claims.scope.includes("openid")) throw new OAuthRefusal("insufficient_scope", "userinfo needs the openid scope", 403);
  const user = await grantUser(deps.db, claims.sid, claims.client_id, new Date(), config.REQUIRE_VERIFIED_EMAIL === "on");
  if (!user) throw invalid();
  return { sub: user.id, ...claimsFor(claims.scope, user) };
}
