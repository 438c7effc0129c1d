import * as oauth from "oauth4webapi";
import type { Config, ProviderConfig } from "../../config";
import { fromBase64Url } from "../../encoding";
import { appleClientSecret } from "../core/tokens";
import { checkIdToken, openIdProfile, type Profile, ProviderFailure, text } from "./claims";

export { type Profile, ProviderFailure } from "./claims";

/**
 * Social sign-in providers: the configured list (OAUTH_PROVIDERS), each kind's quirks, and the
 * protocol through oauth4webapi (OpenID-certified), the only module that imports it. Knows nothing
 * of HTTP routes or D1: it builds the authorization URL and turns a callback into a checked Profile.
 *
 * Always the authorization code flow with PKCE (S256) and `state`; OpenID providers also get a
 * `nonce`, and their ID token is checked in full: signature against the provider's JWKS (the
 * library leaves it to the caller on the code flow), `iss`, `aud`, `exp`, `nonce`, and what the
 * library leaves alone (auth/social/claims.ts): `azp` whenever present, `iat`, the lifetime.
 */

export type ProviderKind = ProviderConfig["kind"];

const LABELS: Record<ProviderKind, string> = { oidc: "OpenID Connect", google: "Google", microsoft: "Microsoft", apple: "Apple", github: "GitHub" };
const SCOPES: Record<ProviderKind, string[]> = {
  oidc: ["openid", "email", "profile"],
  google: ["openid", "email", "profile"],
  microsoft: ["openid", "email", "profile"],
  apple: ["openid", "name", "email"],
  github: ["read:user", "user:email"],
};
const ISSUERS = { google: "https://accounts.google.com", apple: "https://appleid.apple.com" } as const;
const MICROSOFT = "https://login.microsoftonline.com";

export const providerOf = (config: Config, id: string) => config.OAUTH_PROVIDERS.find((p) => p.id === id);

/** A provider listed but turned off by a fault in its configuration (config-providers.ts): provider_unavailable, not unknown. */
export const providerOff = (config: Config, id: string) => config.OAUTH_UNAVAILABLE.all || config.OAUTH_UNAVAILABLE.ids.includes(id);

/** The providers that work, as the app's buttons show them (one turned off by a configuration fault is not listed). */
export const providerList = (config: Config) => config.OAUTH_PROVIDERS.map((p) => ({ id: p.id, name: p.name ?? LABELS[p.kind], kind: p.kind }));

/** Apple posts its answer (form_post, a cross-site POST): the flow's cookie must be SameSite=None to come along. */
export const postsBack = (p: ProviderConfig) => p.kind === "apple";

/** OpenID providers carry an ID token; GitHub is OAuth 2 only. */
const isOpenId = (p: ProviderConfig) => p.kind !== "github";

const local = (url: string) => new URL(url).protocol === "http:"; // config allows http for localhost only
const options = (url: string) => ({ [oauth.allowInsecureRequests]: local(url), [oauth.customFetch]: reach, signal: AbortSignal.timeout(10_000) });

/**
 * fetch, where any failure to get an answer is provider_unreachable: refused, reset, unknown host,
 * timed out. Each runtime names these its own way (workerd: a plain Error "Network connection
 * lost." with `retryable`; browsers and Node: TypeError; a timeout: DOMException), so the one place
 * that knows a request was in flight decides, not the error's name.
 */
async function reach(url: string, init: RequestInit): Promise<Response> {
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

/** The provider's authorization server: discovered for OpenID issuers, fixed endpoints for GitHub and Microsoft. */
async function serverOf(p: ProviderConfig): Promise<oauth.AuthorizationServer> {
  if (p.kind === "github") {
    return { issuer: p.server, authorization_endpoint: `${p.server}/login/oauth/authorize`, token_endpoint: `${p.server}/login/oauth/access_token` };
  }
  if (p.kind === "microsoft") {
    // Multi-tenant endpoints answer for many issuers (one per tenant): the ID token's own `tid` names
    // it, checked in finishSignIn. Documented, fixed endpoints instead of a discovery that cannot match.
    const base = `${MICROSOFT}/${p.tenant}`;
    return {
      issuer: `${MICROSOFT}/{tenantid}/v2.0`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      token_endpoint: `${base}/oauth2/v2.0/token`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
      id_token_signing_alg_values_supported: ["RS256"],
    };
  }
  const issuer = p.kind === "oidc" ? p.issuer : ISSUERS[p.kind];
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

export interface FlowSecrets {
  state: string;
  codeVerifier: string;
  nonce: string;
  redirectUri: string;
}

/** Fresh secrets for a flow: state, PKCE verifier and nonce (random, from oauth4webapi). */
export const newFlowSecrets = (redirectUri: string): FlowSecrets => ({
  state: oauth.generateRandomState(),
  codeVerifier: oauth.generateRandomCodeVerifier(),
  nonce: oauth.generateRandomNonce(),
  redirectUri,
});

/** Where the browser goes to sign in at the provider. */
export async function authorizationUrl(p: ProviderConfig, flow: FlowSecrets): Promise<URL> {
  const as = await serverOf(p);
  if (!as.authorization_endpoint) throw new ProviderFailure("provider_error", "no authorization_endpoint");
  const url = new URL(as.authorization_endpoint);
  const params = {
    client_id: p.client_id,
    response_type: "code",
    redirect_uri: flow.redirectUri,
    scope: (p.scopes ?? SCOPES[p.kind]).join(" "),
    state: flow.state,
    code_challenge: await oauth.calculatePKCECodeChallenge(flow.codeVerifier),
    code_challenge_method: "S256",
    ...(isOpenId(p) ? { nonce: flow.nonce } : {}),
    ...(postsBack(p) ? { response_mode: "form_post" } : {}),
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

/**
 * Completes a callback: checks `state` (and RFC 9207 `iss` where the provider sends it), swaps the
 * code (with the PKCE verifier and the client's secret), checks the ID token in full, and reads the
 * profile. `params` are the callback's query, or its form for a provider that posts back.
 */
export async function finishSignIn(config: Config, p: ProviderConfig, params: URLSearchParams, flow: FlowSecrets): Promise<Profile> {
  const as = await serverOf(p);
  const client: oauth.Client = { client_id: p.client_id };
  let callback: URLSearchParams;
  try {
    callback = oauth.validateAuthResponse(as, client, params, flow.state);
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError)
      throw new ProviderFailure(err.error === "access_denied" ? "access_denied" : "provider_error", err.error);
    throw failure(err, "callback");
  }
  const secret = config.OAUTH_CLIENT_SECRETS[p.id] ?? "";
  const now = new Date();
  try {
    const auth =
      p.kind === "apple"
        ? oauth.ClientSecretPost(await appleClientSecret({ teamId: p.team_id, keyId: p.key_id, clientId: p.client_id, pkcs8: secret }, now))
        : p.kind === "github"
          ? oauth.ClientSecretPost(secret)
          : oauth.ClientSecretBasic(secret);
    const opts = options(as.token_endpoint ?? as.issuer);
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, callback, flow.redirectUri, flow.codeVerifier, opts);
    if (p.kind === "github") return await githubProfile(p, await oauth.processAuthorizationCodeResponse(as, client, response));

    const checkedBy = p.kind === "microsoft" ? await microsoftIssuer(p, response) : as;
    const result = await oauth.processAuthorizationCodeResponse(checkedBy, client, response, { expectedNonce: flow.nonce, requireIdToken: true });
    await oauth.validateApplicationLevelSignature(checkedBy, response, { ...opts, [oauth.jwksCache]: jwksCacheOf(checkedBy.jwks_uri ?? "") });
    const claims = oauth.getValidatedIdTokenClaims(result);
    if (!claims) throw new ProviderFailure("invalid_response", "no ID token");
    checkIdToken(claims, p.client_id, now);
    let info: Record<string, unknown> = claims;
    // Providers that follow OpenID's default put address claims in userinfo, not the ID token.
    if (claims.email === undefined && as.userinfo_endpoint) {
      const answer = await oauth.userInfoRequest(checkedBy, client, result.access_token, options(as.userinfo_endpoint));
      info = { ...(await oauth.processUserInfoResponse(checkedBy, client, claims.sub, answer)), ...claims };
    }
    return openIdProfile(p, claims.iss, claims.sub, info, params);
  } catch (err) {
    throw failure(err, "token");
  }
}

/** A Microsoft multi-tenant answer: the expected issuer is the ID token's own tenant's (its signature is checked after). */
async function microsoftIssuer(p: Extract<ProviderConfig, { kind: "microsoft" }>, response: Response): Promise<oauth.AuthorizationServer> {
  const body = (await response.clone().json()) as { id_token?: string };
  const payload = body.id_token?.split(".")[1];
  const bytes = payload ? fromBase64Url(payload) : null;
  const tid = bytes ? text((JSON.parse(new TextDecoder().decode(bytes)) as { tid?: unknown }).tid) : null;
  if (!tid || !/^[0-9a-f-]{36}$/.test(tid)) throw new ProviderFailure("invalid_response", "no tenant id");
  if (/^[0-9a-f-]{36}$/.test(p.tenant) && tid !== p.tenant) throw new ProviderFailure("invalid_response", "another tenant");
  const as = await serverOf(p);
  return { ...as, issuer: `${MICROSOFT}/${tid}/v2.0` };
}

function jwksCacheOf(uri: string): oauth.JWKSCacheInput {
  const cache = jwksCaches.get(uri) ?? {};
  jwksCaches.set(uri, cache);
  return cache;
}

/** GitHub (OAuth 2 only): the user, and an address only if it is the primary one and verified. */
async function githubProfile(p: Extract<ProviderConfig, { kind: "github" }>, tokens: oauth.TokenEndpointResponse): Promise<Profile> {
  const get = async <T>(path: string) => {
    const res = await reach(`${p.api}${path}`, {
      headers: { authorization: `Bearer ${tokens.access_token}`, accept: "application/vnd.github+json", "user-agent": "edge-auth" },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new ProviderFailure("provider_error", `GitHub ${path} answered ${res.status}`);
    return (await res.json()) as T;
  };
  const user = await get<{ id?: number; login?: string; name?: string | null }>("/user");
  if (typeof user.id !== "number") throw new ProviderFailure("invalid_response", "GitHub user without an id");
  const emails = await get<{ email: string; primary: boolean; verified: boolean }[]>("/user/emails");
  const primary = Array.isArray(emails) ? emails.find((e) => e.primary) : undefined;
  return {
    issuer: p.server,
    subject: String(user.id),
    email: primary?.email.toLowerCase() ?? null,
    emailVerified: primary?.verified === true,
    username: text(user.login),
    name: text(user.name),
  };
}

/** Any error of a provider exchange as a ProviderFailure; the detail is the library's code and message, never a token. */
function failure(err: unknown, step: string): ProviderFailure {
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
