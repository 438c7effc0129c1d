import { createRemoteJWKSet, errors, jwtVerify } from "jose";

/**
 * The resource server's half of OAuth: who may call this MCP server. It trusts one issuer (the API),
 * finds its keys through the issuer's discovery document, and accepts only RFC 9068 access tokens
 * issued for this server (aud = RESOURCE) that carry SCOPE.
 */

export interface Env {
  ISSUER: string;
  RESOURCE: string;
  SCOPE: string;
}

/** The caller, once its token checks out. */
export interface Caller {
  token: string;
  sub: string; // the user (the client itself for client_credentials)
  clientId: string;
  scopes: string[];
  expiresAt: number; // seconds since the epoch
}

/** A request refused: 401 (no token or a bad one), 403 (a good token without the scope), 503 (the issuer cannot be read). */
export class Refusal extends Error {
  constructor(
    readonly status: 401 | 403 | 503,
    readonly error: "invalid_token" | "insufficient_scope" | "temporarily_unavailable" | undefined,
    readonly description: string,
  ) {
    super(description);
  }
}

/** RFC 9728 3.1: the metadata's URL is the resource's with /.well-known/oauth-protected-resource put before its path. */
export function metadataUrl(resource: string): string {
  const url = new URL(resource);
  return `${url.origin}/.well-known/oauth-protected-resource${url.pathname === "/" ? "" : url.pathname}`;
}

/** RFC 9728 2: what a client needs to find the authorization server and what to ask it for. */
export function protectedResourceMetadata(env: Env) {
  return {
    resource: env.RESOURCE,
    authorization_servers: [env.ISSUER],
    scopes_supported: [env.SCOPE],
    bearer_methods_supported: ["header"],
    resource_name: "edge-auth example MCP server",
  };
}

/** RFC 6750 3 and RFC 9728 5.1: the challenge that sends a client to the metadata, and the scope to ask for. */
export function challenge(env: Env, refusal: Refusal): string {
  const params: Record<string, string> = {};
  if (refusal.error && refusal.status !== 503) {
    params.error = refusal.error;
    params.error_description = refusal.description;
  }
  params.scope = env.SCOPE;
  params.resource_metadata = metadataUrl(env.RESOURCE);
  return `Bearer ${Object.entries(params)
    .map(([k, v]) => `${k}="${v.replace(/["\\]/g, "")}"`)
    .join(", ")}`;
}

// Per isolate: the issuer's keys (jose caches them and refetches on an unknown kid, as after a
// rotation). Keyed by issuer so a changed ISSUER is never checked against the old one's keys. Only
// settled data is kept between requests, never a promise another request started.
let trusted: { issuer: string; keys: ReturnType<typeof createRemoteJWKSet>; algorithms: string[] } | undefined;

async function issuerKeys(issuer: string) {
  if (trusted?.issuer === issuer) return trusted;
  let meta: { issuer?: unknown; jwks_uri?: unknown; access_token_signing_alg_values_supported?: unknown };
  try {
    const res = await fetch(`${issuer.replace(/\/+$/, "")}/.well-known/oauth-authorization-server`, { headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`status ${res.status}`);
    meta = await res.json();
  } catch {
    throw new Refusal(503, "temporarily_unavailable", "The authorization server's metadata could not be read");
  }
  // RFC 8414 3.3: the document must name the issuer it was fetched for.
  if (meta.issuer !== issuer || typeof meta.jwks_uri !== "string" || !URL.canParse(meta.jwks_uri)) {
    throw new Refusal(503, "temporarily_unavailable", "The authorization server's metadata does not match ISSUER");
  }
  const algs = meta.access_token_signing_alg_values_supported;
  const algorithms = Array.isArray(algs) && algs.every((a) => typeof a === "string" && a !== "none") && algs.length ? algs : ["ES256"];
  trusted = { issuer, keys: createRemoteJWKSet(new URL(meta.jwks_uri)), algorithms };
  return trusted;
}

// What jose throws for a token that is not good (as opposed to keys that could not be fetched).
const TOKEN_ERRORS = [
  errors.JWTExpired,
  errors.JWTClaimValidationFailed,
  errors.JWTInvalid,
  errors.JWSInvalid,
  errors.JWSSignatureVerificationFailed,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
];

/** The caller behind the request's bearer token, or a Refusal. */
export async function authenticate(request: Request, env: Env): Promise<Caller> {
  const header = request.headers.get("authorization");
  // RFC 6750 3.1: a request without credentials gets the challenge without an error code.
  if (header === null) throw new Refusal(401, undefined, "An access token is required");
  const token = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header)?.[1];
  if (!token) throw new Refusal(401, "invalid_token", "The Authorization header must be: Bearer <access token>");

  const { keys, algorithms } = await issuerKeys(env.ISSUER);
  let payload: Record<string, unknown>;
  try {
    // typ at+jwt (RFC 9068): an ID token or another JWT from the same issuer is not an access token.
    // audience: a token the API issued for another resource is not for this one.
    ({ payload } = await jwtVerify(token, keys, {
      issuer: env.ISSUER,
      audience: env.RESOURCE,
      typ: "at+jwt",
      algorithms,
      requiredClaims: ["sub", "client_id", "iat", "exp", "jti"],
    }));
  } catch (err) {
    if (TOKEN_ERRORS.some((E) => err instanceof E)) throw new Refusal(401, "invalid_token", invalidBecause(err));
    throw new Refusal(503, "temporarily_unavailable", "The authorization server's keys could not be read");
  }
  const scopes = typeof payload.scope === "string" ? payload.scope.split(" ").filter(Boolean) : [];
  if (!scopes.includes(env.SCOPE)) throw new Refusal(403, "insufficient_scope", `This server needs the scope ${env.SCOPE}`);
  return { token, sub: String(payload.sub), clientId: String(payload.client_id), scopes, expiresAt: Number(payload.exp) };
}

function invalidBecause(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "The access token expired";
  if (err instanceof errors.JWTClaimValidationFailed && err.claim === "aud") return "The access token is for another resource";
  return "The access token is not valid";
}
