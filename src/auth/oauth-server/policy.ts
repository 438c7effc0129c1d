import type { Config } from "../../config";
import type { OAuthClient } from "../../db/oauth-server-tables";
import { OAuthRefusal } from "./errors";

/**
 * What an app may ask for: scopes and resources (RFC 8707), and what its tokens are for. One place, so
 * the authorization request, the code's exchange, a refresh and client_credentials judge alike.
 */

/** OpenID Connect's scopes, always known: what each adds is in auth/oauth-server/claims.ts. */
export const OIDC_SCOPES = ["openid", "profile", "email", "offline_access"] as const;

/** A scope parameter as a list: split on spaces, each once, in the order given. */
export function scopesOf(scope: string | null | undefined): string[] {
  return [...new Set((scope ?? "").split(" ").filter(Boolean))];
}

/** The scopes this client may be granted: its registered ones that the deployment knows. */
export function clientScopes(config: Config, client: Pick<OAuthClient, "scope">): string[] {
  const known = new Set<string>([...OIDC_SCOPES, ...config.OAUTH_SCOPES]);
  return scopesOf(client.scope).filter((s) => known.has(s));
}

/**
 * The scopes to grant for `asked` (a scope parameter): none asked means the client's registered ones;
 * any scope beyond them is refused (invalid_scope), never silently dropped.
 */
export function grantableScopes(config: Config, client: Pick<OAuthClient, "scope">, asked: string | null | undefined): string[] {
  const allowed = clientScopes(config, client);
  const wanted = scopesOf(asked);
  if (wanted.length === 0) return allowed;
  const beyond = wanted.filter((s) => !allowed.includes(s));
  if (beyond.length) throw new OAuthRefusal("invalid_scope", `This client may not ask for: ${beyond.join(" ")}`);
  return wanted;
}

/** A resource indicator in its one comparable form (RFC 8707 2: absolute, no fragment), or null if it is not one. */
export function normalizeResource(resource: string): string | null {
  if (!URL.canParse(resource) || resource.includes("#")) return null;
  return new URL(resource).href;
}

/**
 * The resource a token may be for: one the deployment (OAUTH_RESOURCES) or the client allows, never
 * the API's own audience (its tokens manage accounts; an app's never do). Null when none is asked.
 */
export function grantableResource(config: Config, client: Pick<OAuthClient, "resources">, asked: string[]): string | null {
  if (asked.length === 0) return null;
  if (asked.length > 1) throw new OAuthRefusal("invalid_target", "Ask for one resource at a time");
  const resource = normalizeResource(asked[0]!);
  if (!resource) throw new OAuthRefusal("invalid_target", "The resource must be an absolute URI without a fragment");
  const allowed = [...config.OAUTH_RESOURCES, ...client.resources].map(normalizeResource);
  const own = normalizeResource(config.AUDIENCE);
  if (!allowed.includes(resource) || resource === own) throw new OAuthRefusal("invalid_target", "This resource is not one this client may ask for");
  return resource;
}

/** The `aud` of an app's access token: the resource granted, or this issuer (for /oauth2/userinfo) when none was. */
export const audienceOf = (config: Config, resource: string | null) => resource ?? config.ISSUER;
