import { grantByRefreshHash } from "../../db/oauth-grants";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { Refusal } from "../core/errors";
import { rotate } from "../core/refresh";
import { hashRefreshToken, REFRESH_TOKEN_FORMAT } from "../core/refresh-tokens";
import { OAuthRefusal } from "./errors";
import { clientScopes, grantableResource, normalizeResource, scopesOf } from "./policy";
import { endGrant, grantTokens, type TokenAnswer } from "./token";

/**
 * The refresh_token grant (RFC 6749 6): the API's own rotation (auth/core/refresh.ts rotate) on the
 * grant's session, so one winner per token, a lost answer retried by the same client, and a replay
 * outside the grace window ending the whole grant. A refresh may narrow the scope, never widen it,
 * and never changes the resource (RFC 8707 2.2).
 */

export interface RefreshParams {
  refresh_token: string;
  scope?: string;
  resource?: string[];
}

const deadToken = () => new OAuthRefusal("invalid_grant", "The refresh token is invalid, expired, revoked or already used");

export async function refreshGrant(deps: Deps, client: OAuthClient, p: RefreshParams): Promise<TokenAnswer> {
  if (!client.grantTypes.includes("refresh_token")) throw new OAuthRefusal("unauthorized_client", "This client may not use the refresh_token grant");
  // A named scope is judged before the rotation, so a refused one leaves the token usable; only such
  // a request pays this read. A named resource is a condition of the rotation itself (MCP clients name
  // it on every refresh): when the rotation does not happen, the read below says why.
  if (p.scope !== undefined) await checkNarrowing(deps, client, p);
  const resource = p.resource?.length ? resourceOf(p.resource) : undefined;
  let rotated: Awaited<ReturnType<typeof rotate>>;
  try {
    rotated = await rotate(deps, p.refresh_token, client.id, resource);
  } catch (err) {
    if (!(err instanceof Refusal) || err.code !== "invalid_token") throw err;
    if (resource !== undefined) await checkNarrowing(deps, client, p);
    throw deadToken();
  }
  const { session, user, successor, now } = rotated;
  // The client as it is now: what an admin, the deployment or its document withdrew is not handed out again.
  if (session.resource !== null && !stillAllowed(deps, client, session.resource)) {
    await endGrant(deps, session.id, "resource_withdrawn");
    throw new OAuthRefusal("invalid_grant", "The resource this grant was for is no longer one this client may ask for");
  }
  const allowed = clientScopes(deps.config, client);
  const granted = scopesOf(session.scope).filter((s) => allowed.includes(s));
  const scope = p.scope === undefined ? granted : scopesOf(p.scope).filter((s) => granted.includes(s));
  const answer = await grantTokens(deps, { client, user, grant: session, scope, resource: session.resource, now, idToken: false });
  return { ...answer, refresh_token: successor };
}

function resourceOf(asked: string[]): string {
  const resource = asked.length === 1 ? normalizeResource(asked[0]!) : null;
  if (!resource) throw new OAuthRefusal("invalid_target", "A refresh keeps the resource that was granted");
  return resource;
}

function stillAllowed(deps: Deps, client: OAuthClient, resource: string): boolean {
  try {
    return grantableResource(deps.config, client, [resource]) === resource;
  } catch {
    return false;
  }
}

async function checkNarrowing(deps: Deps, client: OAuthClient, p: RefreshParams) {
  if (!REFRESH_TOKEN_FORMAT.test(p.refresh_token)) throw deadToken();
  const grant = await grantByRefreshHash(deps.db, await hashRefreshToken(p.refresh_token), client.id);
  // A token not current here (rotated, revoked, unknown) goes on to the rotation, which knows which.
  if (!grant) return;
  const granted = scopesOf(grant.scope);
  const beyond = scopesOf(p.scope).filter((s) => !granted.includes(s));
  if (beyond.length) throw new OAuthRefusal("invalid_scope", `A refresh cannot widen the grant: ${beyond.join(" ")} was not granted`);
  if (p.resource?.length && (p.resource.length > 1 || normalizeResource(p.resource[0]!) !== grant.resource))
    throw new OAuthRefusal("invalid_target", "A refresh keeps the resource that was granted");
}
