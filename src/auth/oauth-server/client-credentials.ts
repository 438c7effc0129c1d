import { markClientUsed } from "../../db/oauth-grants";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { accessUntil } from "../core/sign-in";
import { activeKeys } from "../core/signing-keys";
import { OAuthRefusal } from "./errors";
import { audienceOf, grantableResource, grantableScopes, OIDC_SCOPES } from "./policy";
import type { TokenAnswer } from "./token";
import { signAppAccessToken } from "./tokens";

/**
 * The client_credentials grant (RFC 6749 4.4): a confidential machine client acting for itself. The
 * token's `sub` is the client; no user, so no OpenID scope and no refresh token. Such a token is not
 * revocable one by one: it lives out its ACCESS_TOKEN_TTL (disabling the client stops new ones).
 */
export async function clientCredentials(deps: Deps, client: OAuthClient, p: { scope?: string; resource?: string[] }): Promise<TokenAnswer> {
  const { config } = deps;
  if (client.secretHash === null || !client.grantTypes.includes("client_credentials"))
    throw new OAuthRefusal("unauthorized_client", "Only a confidential client allowed client_credentials may use it");
  const userScopes = new Set<string>(OIDC_SCOPES);
  const allowed = {
    scope: grantableScopes(config, client, undefined)
      .filter((s) => !userScopes.has(s))
      .join(" "),
  };
  const scope = grantableScopes(config, allowed, p.scope);
  const resource = grantableResource(config, client, p.resource ?? []);
  const now = new Date();
  if (client.firstTokenAt === null) await markClientUsed(deps.db, client.id, now);
  const access = await signAppAccessToken(config, await activeKeys(deps), {
    sub: client.id,
    clientId: client.id,
    scope,
    audience: audienceOf(config, resource),
    now,
    expiresAt: accessUntil(config, now),
  });
  return { access_token: access.token, token_type: "Bearer", expires_in: access.expiresIn, scope: scope.join(" ") };
}
