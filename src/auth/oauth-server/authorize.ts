import type { Config } from "../../config";
import { insertRequest } from "../../db/oauth-requests";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { requireAppUrl } from "../mail/links";
import { usableClient } from "./clients";
import { OAuthRefusal } from "./errors";
import { grantableResource, grantableScopes } from "./policy";
import { redirectUriRegistered, withParams } from "./redirects";

/**
 * The authorization endpoint (RFC 6749 4.1.1, OpenID Connect 3.1.2): checks an app's request and
 * keeps it for the app's consent page (auth/oauth-server/consent.ts). Until the redirect_uri is known
 * to be the client's, a refusal is answered here (never sent to an unverified address); after, it
 * travels back to the app with its state and this issuer (RFC 9207).
 */

export interface AuthorizeParams {
  response_type?: string;
  client_id?: string;
  redirect_uri?: string;
  state?: string;
  scope?: string;
  resource?: string | string[];
  code_challenge?: string;
  code_challenge_method?: string;
  nonce?: string;
  prompt?: string;
  max_age?: string;
}

/** The outcome: where the browser goes next, the app's consent page or back to the client with an error. */
export type Authorized = { location: string };

const MAX_STATE = 1024;
const MAX_NONCE = 512;
// A year: far beyond any session's life, so larger asks nothing more (and stays an integer in D1).
const MAX_MAX_AGE = 365 * 24 * 60 * 60;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const PROMPTS = new Set(["none", "login", "consent"]);

/** The request's prompt values as stored ("login consent"), or a refusal: unknown values, or none with another. */
function promptOf(prompt: string | undefined): string | null {
  if (prompt === undefined || prompt === "") return null;
  const values = [...new Set(prompt.split(" ").filter(Boolean))];
  const unknown = values.filter((v) => !PROMPTS.has(v));
  if (unknown.length) throw new OAuthRefusal("invalid_request", `Unsupported prompt value: ${unknown.join(" ").slice(0, 64)}`);
  if (values.includes("none") && values.length > 1) throw new OAuthRefusal("invalid_request", "prompt=none cannot be combined with another value");
  return values.join(" ") || null;
}

function maxAgeOf(maxAge: string | undefined): number | null {
  if (maxAge === undefined) return null;
  if (!/^\d{1,10}$/.test(maxAge) || Number(maxAge) > MAX_MAX_AGE)
    throw new OAuthRefusal("invalid_request", "max_age must be a non-negative integer of seconds");
  return Number(maxAge);
}

/** The client and the redirect_uri to answer at, or a refusal answered in place (400 JSON). */
async function verifiedClient(deps: Deps, params: AuthorizeParams): Promise<{ client: OAuthClient; redirectUri: string }> {
  if (!params.client_id) throw new OAuthRefusal("invalid_request", "client_id is required");
  const client = await usableClient(deps, params.client_id);
  if (!client) throw new OAuthRefusal("invalid_request", "Unknown or disabled client");
  if (params.redirect_uri === undefined) {
    if (client.redirectUris.length !== 1) throw new OAuthRefusal("invalid_request", "redirect_uri is required: the client has several");
    return { client, redirectUri: client.redirectUris[0]! };
  }
  if (!redirectUriRegistered(client.redirectUris, params.redirect_uri))
    throw new OAuthRefusal("invalid_request", "redirect_uri is not one registered for this client");
  return { client, redirectUri: params.redirect_uri };
}

/** What the request asks, checked; a refusal here goes back to the (verified) redirect_uri. */
function checked(config: Config, client: OAuthClient, params: AuthorizeParams) {
  if (params.state !== undefined && params.state.length > MAX_STATE) throw new OAuthRefusal("invalid_request", `state is longer than ${MAX_STATE} characters`);
  if (!params.response_type) throw new OAuthRefusal("invalid_request", "response_type is required");
  if (params.response_type !== "code") throw new OAuthRefusal("unsupported_response_type", "Only response_type=code is supported");
  if (!client.grantTypes.includes("authorization_code")) throw new OAuthRefusal("unauthorized_client", "This client may not use the authorization code grant");
  if (!params.code_challenge) throw new OAuthRefusal("invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256");
  if (params.code_challenge_method !== "S256") throw new OAuthRefusal("invalid_request", "code_challenge_method must be S256");
  if (!CHALLENGE.test(params.code_challenge)) throw new OAuthRefusal("invalid_request", "code_challenge must be 43 base64url characters (S256)");
  if (params.nonce !== undefined && params.nonce.length > MAX_NONCE) throw new OAuthRefusal("invalid_request", `nonce is longer than ${MAX_NONCE} characters`);
  const prompt = promptOf(params.prompt);
  const maxAge = maxAgeOf(params.max_age);
  const scopes = grantableScopes(config, client, params.scope);
  const asked = params.resource === undefined ? [] : [params.resource].flat();
  const resource = grantableResource(config, client, asked);
  return { prompt, maxAge, scopes, resource, codeChallenge: params.code_challenge };
}

/**
 * The app's consent page for a stored request: APP_URL with the request id in the fragment (never
 * sent to a server), and `prompt=none` when the app asked it, so a page with nobody signed in answers
 * login_required at once instead of showing a sign-in form.
 */
function consentPage(config: Config, requestId: string, prompt: string | null) {
  const url = new URL(config.APP_URL);
  url.hash = `authorize=${requestId}${prompt === "none" ? "&prompt=none" : ""}`;
  return url.href;
}

/**
 * Checks and stores the request. The id handed to the app is 256 random bits; only its SHA-256 is
 * kept. Throws OAuthRefusal for what cannot be redirected; answers the redirect for what can.
 */
export async function authorize(deps: Deps, params: AuthorizeParams, now = new Date()): Promise<Authorized> {
  const { config } = deps;
  requireAppUrl(config); // without the app's page there is nowhere to ask the user: the deployment's fault
  const { client, redirectUri } = await verifiedClient(deps, params);
  let asked: ReturnType<typeof checked>;
  try {
    asked = checked(config, client, params);
  } catch (err) {
    if (!(err instanceof OAuthRefusal)) throw err;
    // An over-long state is not echoed back: the refusal is about it.
    const state = params.state !== undefined && params.state.length <= MAX_STATE ? params.state : undefined;
    return { location: withParams(redirectUri, { error: err.error, error_description: err.description, state, iss: config.ISSUER }) };
  }
  const requestId = toBase64Url(randomBytes(32));
  await insertRequest(deps.db, {
    id: await sha256Base64Url(requestId),
    clientId: client.id,
    redirectUri,
    state: params.state ?? null,
    scope: asked.scopes.join(" "),
    resource: asked.resource,
    codeChallenge: asked.codeChallenge,
    nonce: params.nonce ?? null,
    prompt: asked.prompt,
    maxAge: asked.maxAge,
    createdAt: now,
    expiresAt: new Date(now.getTime() + config.OAUTH_REQUEST_TTL * 1000),
  });
  return { location: consentPage(config, requestId, asked.prompt) };
}
