import * as oauth from "oauth4webapi";
import type { Config, ProviderConfig } from "../../config";
import type { Profile } from "./claims";
import { ProviderFailure } from "./claims";
import { kindOf } from "./kinds";
import { type FlowSecrets, failure, options } from "./protocol";

export { type Profile, ProviderFailure } from "./claims";
export type { FlowSecrets } from "./protocol";

/**
 * Social sign-in providers: the configured list (OAUTH_PROVIDERS), and the protocol through
 * oauth4webapi (OpenID-certified), which only auth/social/ imports. Knows nothing of HTTP routes or
 * D1: it builds the authorization URL and turns a callback into a checked Profile. Each kind's
 * quirks are its object's (auth/social/kinds/): nothing here branches on a kind.
 *
 * Always the authorization code flow with PKCE (S256) and `state`; OpenID providers also get a
 * `nonce`, and their ID token is checked in full: signature against the provider's JWKS (the
 * library leaves it to the caller on the code flow), `iss`, `aud`, `exp`, `nonce`, and what the
 * library leaves alone (auth/social/claims.ts): `azp` whenever present, `iat`, the lifetime.
 */

export const providerOf = (config: Config, id: string) => config.OAUTH_PROVIDERS.find((p) => p.id === id);

/** A provider listed but turned off by a fault in its configuration (config-providers.ts): provider_unavailable, not unknown. */
export const providerOff = (config: Config, id: string) => config.OAUTH_UNAVAILABLE.all || config.OAUTH_UNAVAILABLE.ids.includes(id);

/** The providers that work, as the app's buttons show them (one turned off by a configuration fault is not listed). */
export const providerList = (config: Config) => config.OAUTH_PROVIDERS.map((p) => ({ id: p.id, name: p.name ?? kindOf(p).label, kind: p.kind }));

/** A provider that posts its answer (Apple's form_post, a cross-site POST): the flow's cookie must be SameSite=None to come along. */
export const postsBack = (p: ProviderConfig) => kindOf(p).postsBack;

/** Fresh secrets for a flow: state, PKCE verifier and nonce (random, from oauth4webapi). */
export const newFlowSecrets = (redirectUri: string, maxAge: number): FlowSecrets => ({
  state: oauth.generateRandomState(),
  codeVerifier: oauth.generateRandomCodeVerifier(),
  nonce: oauth.generateRandomNonce(),
  redirectUri,
  maxAge,
});

/** Where the browser goes to sign in at the provider. */
export async function authorizationUrl(p: ProviderConfig, flow: FlowSecrets): Promise<URL> {
  const kind = kindOf(p);
  const as = await kind.server(p);
  if (!as.authorization_endpoint) throw new ProviderFailure("provider_error", "no authorization_endpoint");
  const url = new URL(as.authorization_endpoint);
  const params = {
    client_id: p.client_id,
    response_type: "code",
    redirect_uri: flow.redirectUri,
    scope: (p.scopes ?? kind.scopes).join(" "),
    state: flow.state,
    code_challenge: await oauth.calculatePKCECodeChallenge(flow.codeVerifier),
    code_challenge_method: "S256",
    // OpenID's maximum authentication age (SOCIAL_MAX_AGE): an older sign-in at the provider is asked again.
    ...(kind.maxAge === "none" ? {} : { max_age: String(flow.maxAge) }),
    ...kind.authorizationParams(flow),
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

/**
 * Completes a callback: checks `state` (and RFC 9207 `iss` where the provider sends it), swaps the
 * code (with the PKCE verifier and the client's secret), and has the kind read the checked profile.
 * `params` are the callback's query, or its form for a provider that posts back.
 */
export async function finishSignIn(config: Config, p: ProviderConfig, params: URLSearchParams, flow: FlowSecrets): Promise<Profile> {
  const kind = kindOf(p);
  const as = await kind.server(p);
  const client: oauth.Client = { client_id: p.client_id };
  let callback: URLSearchParams;
  try {
    callback = oauth.validateAuthResponse(as, client, params, flow.state);
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError)
      throw new ProviderFailure(err.error === "access_denied" ? "access_denied" : "provider_error", err.error);
    throw failure(err, "callback");
  }
  const now = new Date();
  try {
    const auth = await kind.clientAuth(p, config.OAUTH_CLIENT_SECRETS[p.id] ?? "", now);
    const opts = options(as.token_endpoint ?? as.issuer);
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, callback, flow.redirectUri, flow.codeVerifier, opts);
    return await kind.profile({ p, as, client, response, params, flow, now, maxAge: kind.maxAge });
  } catch (err) {
    throw failure(err, "token");
  }
}
