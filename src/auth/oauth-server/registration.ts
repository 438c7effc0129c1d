import { audit } from "../../audit";
import { insertDynamicClient, PENDING_REGISTRATIONS_MAX } from "../../db/oauth-clients";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { Refusal } from "../core/errors";
import { checkRedirectUris, checkScope, checkUri, secretOf } from "./client-metadata";
import { OAuthRefusal } from "./errors";
import { OIDC_SCOPES } from "./policy";

/**
 * Dynamic client registration (RFC 7591): an app registers itself, under the deployment's policy
 * (OAUTH_REGISTRATION: closed, open, or with an initial access token). Such a client is limited: no
 * client_credentials (it would get tokens without any user's consent) and no resources of its own;
 * and it lapses unless it gets a token within OAUTH_UNUSED_CLIENT_TTL. Knows nothing of HTTP.
 */

export interface RegistrationInput {
  redirect_uris: string[];
  client_name?: string;
  client_uri?: string;
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: "none" | "client_secret_basic" | "client_secret_post";
  scope?: string;
}

const metadata = (description: string) => new OAuthRefusal("invalid_client_metadata", description);

/** The policy's gate: closed refuses, token needs an initial access token whose SHA-256 is configured. */
export async function mayRegister(deps: Deps, bearer: string | undefined): Promise<void> {
  const { OAUTH_REGISTRATION, OAUTH_REGISTRATION_TOKENS } = deps.config;
  if (OAUTH_REGISTRATION === "closed") throw new OAuthRefusal("access_denied", "Dynamic client registration is closed on this server", 403);
  if (OAUTH_REGISTRATION === "open") return;
  const hash = bearer && bearer.length <= 512 ? await sha256Base64Url(bearer) : "";
  // Comparing hashes: nothing about the configured ones leaks through the time taken.
  if (!OAUTH_REGISTRATION_TOKENS.includes(hash)) throw new OAuthRefusal("invalid_token", "A valid initial access token is required to register");
}

/**
 * The site a self-registered app may show on the consent page: only one its codes go to (the origin
 * of one of its https redirect URIs), so no app can claim to be a site it is not. Else none.
 */
function siteOf(uri: string | null, redirectUris: string[]): string | null {
  if (!uri) return null;
  const origin = new URL(uri).origin;
  return redirectUris.some((r) => r.startsWith("https://") && new URL(r).origin === origin) ? uri : null;
}

/** The client's own words, checked as an admin's would be (client-metadata.ts), in the protocol's error codes. */
function checked(deps: Deps, input: RegistrationInput) {
  const grantTypes = [...new Set(input.grant_types ?? ["authorization_code"])];
  const unknown = grantTypes.filter((g) => g !== "authorization_code" && g !== "refresh_token");
  if (unknown.length) throw metadata(`grant_types: only authorization_code and refresh_token can be registered here (${unknown.join(" ").slice(0, 100)})`);
  if (!grantTypes.includes("authorization_code")) throw metadata("grant_types: authorization_code is required");
  if (input.response_types?.some((r) => r !== "code")) throw metadata("response_types: only code");
  try {
    const redirectUris = checkRedirectUris(input.redirect_uris, true);
    return {
      name: input.client_name?.trim() || "Unnamed app",
      uri: siteOf(checkUri(input.client_uri ?? null), redirectUris),
      redirectUris,
      grantTypes,
      scope: checkScope(deps.config, input.scope ?? [...OIDC_SCOPES, ...deps.config.OAUTH_SCOPES].join(" ")),
    };
  } catch (err) {
    if (!(err instanceof Refusal) || !err.fields) throw err;
    const [field, problem] = Object.entries(err.fields)[0]!;
    throw new OAuthRefusal(field.startsWith("redirect_uris") ? "invalid_redirect_uri" : "invalid_client_metadata", `${field}: ${problem}`);
  }
}

/** Registers the client; a confidential one's secret is in the answer this once (client_secret_expires_at 0: it does not expire). */
export async function registerClient(deps: Deps, input: RegistrationInput) {
  const fields = checked(deps, input);
  const method = input.token_endpoint_auth_method ?? "client_secret_basic"; // RFC 7591 2's default
  const secret = method === "none" ? undefined : secretOf();
  const now = new Date();
  const client: OAuthClient = {
    ...fields,
    id: toBase64Url(randomBytes(16)),
    secretHash: secret ? await sha256Base64Url(secret) : null,
    resources: [],
    source: "dynamic",
    createdAt: now,
    disabledAt: null,
    expiresAt: new Date(now.getTime() + deps.config.OAUTH_UNUSED_CLIENT_TTL * 1000),
    firstTokenAt: null,
  };
  const stored = await insertDynamicClient(deps.db, client);
  // A bound on what anonymous callers can grow, besides the rate limit: registrations waiting for their first token.
  if (stored.length === 0)
    throw new OAuthRefusal("temporarily_unavailable", `Over ${PENDING_REGISTRATIONS_MAX} registrations are waiting for their first token: try later`, 429);
  await audit(deps, "oauth_client_registered", { client_id: client.id, method });
  return {
    client_id: client.id,
    client_id_issued_at: Math.floor(now.getTime() / 1000),
    ...(secret ? { client_secret: secret, client_secret_expires_at: 0 as const } : {}),
    client_name: client.name,
    ...(client.uri ? { client_uri: client.uri } : {}),
    redirect_uris: client.redirectUris,
    grant_types: client.grantTypes,
    response_types: ["code" as const],
    token_endpoint_auth_method: method,
    scope: client.scope,
  };
}
