import type { Config } from "../../config";
import { randomBytes, toBase64Url } from "../../encoding";
import { Refusal } from "../core/errors";
import { normalizeResource, OIDC_SCOPES, scopesOf } from "./policy";
import { LOOPBACK_HOSTS } from "./redirects";

/**
 * What a client may be registered with, whoever registers it (an admin: client-admin.ts; the client
 * itself: registration.ts): where its codes may go, its site, its scopes and resources. Each check
 * throws validation_failed naming the field at fault.
 */

// RFC 8252 7.1: a native app's private-use scheme, in reverse-domain form (com.example.app).
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;

export const invalid = (field: string, problem: string) => new Refusal("validation_failed", undefined, { [field]: problem });

/** Why `uri` cannot be a redirect URI, or null: https; http only on a loopback host; a private-use scheme; no fragment. */
export function redirectUriProblem(uri: string): string | null {
  if (!/^[\x21-\x7e]+$/.test(uri)) return "printable ASCII only, no spaces (percent-encode the rest)";
  if (uri.includes("#")) return "must not have a fragment";
  if (!URL.canParse(uri)) return "must be an absolute URI";
  const url = new URL(uri);
  if (url.username || url.password) return "must not carry credentials";
  const scheme = url.protocol.slice(0, -1);
  if (scheme === "https") return url.hostname ? null : "must name a host";
  if (scheme === "http") return LOOPBACK_HOSTS.has(url.hostname) ? null : "http only on a loopback host (127.0.0.1, [::1], localhost); use https";
  if (PRIVATE_USE_SCHEME.test(scheme)) return null;
  return "https, http on a loopback host, or a native app's private-use scheme such as com.example.app:/callback";
}

export function checkRedirectUris(uris: string[], needed: boolean): string[] {
  uris.forEach((uri, i) => {
    const problem = redirectUriProblem(uri);
    if (problem) throw invalid(`redirect_uris.${i}`, problem);
  });
  if (needed && uris.length === 0) throw invalid("redirect_uris", "at least one for the authorization_code grant");
  return [...new Set(uris)]; // stored as given: a request's redirect_uri is compared exactly
}

export function checkUri(uri: string | null): string | null {
  if (uri === null) return null;
  const url = URL.canParse(uri) && !uri.includes("#") ? new URL(uri) : null;
  if (!url || !/^https?:$/.test(url.protocol) || url.username || url.password)
    throw invalid("uri", "must be an http or https URL without credentials or fragment");
  return uri;
}

export function checkScope(config: Pick<Config, "OAUTH_SCOPES">, scope: string): string {
  const known = new Set<string>([...OIDC_SCOPES, ...config.OAUTH_SCOPES]);
  const scopes = scopesOf(scope);
  if (scopes.length === 0) throw invalid("scope", "at least one scope");
  const unknown = scopes.filter((s) => !known.has(s));
  if (unknown.length) throw invalid("scope", `unknown scope: ${unknown.join(" ").slice(0, 200)}`);
  return scopes.join(" ");
}

/** Normalized as policy.ts compares them; never this API's own audience (its tokens manage accounts). */
export function checkResources(config: Pick<Config, "AUDIENCE">, resources: string[]): string[] {
  const own = normalizeResource(config.AUDIENCE);
  const out = resources.map((r, i) => {
    const resource = normalizeResource(r);
    if (!resource) throw invalid(`resources.${i}`, "must be an absolute URI without a fragment");
    if (resource === own) throw invalid(`resources.${i}`, "must not be this API's own audience");
    return resource;
  });
  return [...new Set(out)];
}

export const secretOf = () => toBase64Url(randomBytes(32)); // 256 random bits

export type GrantType = "authorization_code" | "refresh_token" | "client_credentials";
const DEFAULT_GRANTS: GrantType[] = ["authorization_code", "refresh_token"];
const DEFAULT_SCOPE = "openid profile email offline_access";

/** What a pre-registered client is declared with (an admin's POST /admin/clients, or OAUTH_CLIENTS). */
export interface ClientDeclaration {
  name: string;
  uri?: string | null;
  redirect_uris: string[];
  type: "public" | "confidential";
  grant_types?: GrantType[];
  scope?: string;
  resources?: string[];
}

/** A pre-registered client's fields as stored, each checked (validation_failed naming the field at fault). */
export function checkedClient(config: Pick<Config, "OAUTH_SCOPES" | "AUDIENCE">, input: ClientDeclaration) {
  const grantTypes = [...new Set(input.grant_types ?? DEFAULT_GRANTS)];
  if (input.type === "public" && grantTypes.includes("client_credentials"))
    throw invalid("grant_types", "client_credentials only for a confidential client (it authenticates with its secret)");
  return {
    name: input.name,
    uri: checkUri(input.uri ?? null),
    redirectUris: checkRedirectUris(input.redirect_uris, grantTypes.includes("authorization_code")),
    grantTypes,
    scope: checkScope(config, input.scope ?? DEFAULT_SCOPE),
    resources: checkResources(config, input.resources ?? []),
  };
}
