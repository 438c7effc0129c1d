import * as oauth from "oauth4webapi";
import type { ProviderConfig } from "../../config";
import { checkIdToken, type Profile, ProviderFailure } from "./claims";

/**
 * What every provider kind shares: the interface a kind implements (auth/social/kinds/), and the
 * protocol pieces through oauth4webapi (OpenID-certified): reaching a provider, discovery, the
 * ID token's checks, and turning the library's errors into a ProviderFailure.
 */

export interface FlowSecrets {
  state: string;
  codeVerifier: string;
  nonce: string;
  redirectUri: string;
  /** SOCIAL_MAX_AGE: the longest this sign-in may rest on the provider's own authentication (seconds). */
  maxAge: number;
}

/** A code swapped at the provider's token endpoint: what a kind reads the profile from. */
export interface Exchange<P> {
  p: P;
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  response: Response;
  /** The callback's query, or its form for a provider that posts back. */
  params: URLSearchParams;
  flow: FlowSecrets;
  now: Date;
  /** The kind's way of holding a sign-in to SOCIAL_MAX_AGE (ProviderKind's maxAge). */
  maxAge: ProviderKind["maxAge"];
}

/** One kind of provider (ProviderConfig's `kind`), with every quirk of its own: nothing else branches on a kind. */
export interface ProviderKind<P extends ProviderConfig = ProviderConfig> {
  /** The button's label when the configuration names none. */
  label: string;
  scopes: string[];
  /**
   * How a sign-in is held to SOCIAL_MAX_AGE (docs/social-sign-in.md "Sessions here and at the
   * provider"). "required": OpenID's max_age is sent and the ID token must carry an auth_time within
   * it (OpenID Core makes the claim mandatory then). "if_given": max_age is sent and an auth_time
   * given is checked; providers that do not promise the claim are not refused for leaving it out.
   * "none": the protocol has no way to ask (GitHub's OAuth 2).
   */
  maxAge: "required" | "if_given" | "none";
  /** Whether the provider posts its answer (form_post, a cross-site POST): the flow's cookie must then be SameSite=None. */
  postsBack: boolean;
  /** Its authorization server: discovered, or fixed endpoints. */
  server(p: P): Promise<oauth.AuthorizationServer>;
  /** What the authorization URL carries besides the client, PKCE and state (an OpenID nonce, a response mode). */
  authorizationParams(flow: FlowSecrets): Record<string, string>;
  /** How the client authenticates at the token endpoint, from its secret in OAUTH_CLIENT_SECRETS. */
  clientAuth(p: P, secret: string, now: Date): Promise<oauth.ClientAuth>;
  /** The checked profile from the token endpoint's answer. */
  profile(exchange: Exchange<P>): Promise<Profile>;
}

const local = (url: string) => new URL(url).protocol === "http:"; // config allows http for localhost only
export const options = (url: string) => ({ [oauth.allowInsecureRequests]: local(url), [oauth.customFetch]: reach, signal: AbortSignal.timeout(10_000) });

/**
 * fetch, where any failure to get an answer is provider_unreachable: refused, reset, unknown host,
 * timed out. Each runtime names these its own way (workerd: a plain Error "Network connection
 * lost." with `retryable`; browsers and Node: TypeError; a timeout: DOMException), so the one place
 * that knows a request was in flight decides, not the error's name.
 */
export async function reach(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const e = err as Error | undefined;
    const { host, pathname } = new URL(url);
    throw new ProviderFailure("provider_unreachable", `${host}${pathname}: ${e?.name ?? "Error"} ${e?.message ?? ""}`.trim());
  }
}

// Per isolate: discovered metadata (an hour) and each issuer's JWKS (oauth4webapi refreshes it on an unknown kid).
const discovered = new Map<string, { as: oauth.AuthorizationServer; until: number }>();
const jwksCaches = new Map<string, oauth.JWKSCacheInput>();

/** An OpenID issuer's metadata, through discovery. */
export async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
  const cached = discovered.get(issuer);
  if (cached && cached.until > Date.now()) return cached.as;
  try {
    const url = new URL(issuer);
    const as = await oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { ...options(issuer), algorithm: "oidc" }));
    discovered.set(issuer, { as, until: Date.now() + 3_600_000 });
    return as;
  } catch (err) {
    throw failure(err, "discovery");
  }
}

function jwksCacheOf(uri: string): oauth.JWKSCacheInput {
  const cache = jwksCaches.get(uri) ?? {};
  jwksCaches.set(uri, cache);
  return cache;
}

/**
 * An OpenID answer: the ID token checked in full against `checkedBy` (the server, or the one its
 * tenant names), its claims, and address claims from userinfo when the ID token has none.
 */
export async function openIdClaims(x: Exchange<ProviderConfig>, checkedBy: oauth.AuthorizationServer) {
  const { as, client, response, flow } = x;
  const kindMaxAge = x.maxAge;
  // With maxAge the library requires auth_time and checks it (OpenID Core 3.1.2.1: a provider sent max_age must answer it).
  const maxAge = kindMaxAge === "required" ? { maxAge: flow.maxAge } : {};
  const result = await oauth.processAuthorizationCodeResponse(checkedBy, client, response, { expectedNonce: flow.nonce, requireIdToken: true, ...maxAge });
  const opts = options(as.token_endpoint ?? as.issuer);
  await oauth.validateApplicationLevelSignature(checkedBy, response, { ...opts, [oauth.jwksCache]: jwksCacheOf(checkedBy.jwks_uri ?? "") });
  const claims = oauth.getValidatedIdTokenClaims(result);
  if (!claims) throw new ProviderFailure("invalid_response", "no ID token");
  checkIdToken(claims, x.p.client_id, x.now, kindMaxAge === "none" ? undefined : flow.maxAge);
  let info: Record<string, unknown> = claims;
  // Providers that follow OpenID's default put address claims in userinfo, not the ID token.
  if (claims.email === undefined && as.userinfo_endpoint) {
    const answer = await oauth.userInfoRequest(checkedBy, client, result.access_token, options(as.userinfo_endpoint));
    info = { ...(await oauth.processUserInfoResponse(checkedBy, client, claims.sub, answer)), ...claims };
  }
  return { claims, info };
}

/** Any error of a provider exchange as a ProviderFailure; the detail is the library's code and message, never a token. */
export function failure(err: unknown, step: string): ProviderFailure {
  if (err instanceof ProviderFailure) return err;
  if (err instanceof oauth.ResponseBodyError) return new ProviderFailure("provider_error", `${step}: ${err.error}`);
  if (err instanceof oauth.OperationProcessingError) return new ProviderFailure("invalid_response", `${step}: ${err.code ?? ""} ${err.message}`);
  if (err instanceof oauth.UnsupportedOperationError) return new ProviderFailure("invalid_response", `${step}: ${err.message}`);
  // A request that got no answer is provider_unreachable already (reach); an answer whose body did
  // not arrive in time is too. What is left is the answer's fault.
  const e = err as Error;
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return new ProviderFailure("provider_unreachable", `${step}: ${e.name}`);
  return new ProviderFailure("invalid_response", `${step}: ${e?.name ?? "error"} ${e?.message ?? ""}`);
}
