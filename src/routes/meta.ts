import { createRoute, type z } from "@hono/zod-openapi";
import { checkStores } from "../auth/core/health";
import { activeKeys } from "../auth/core/signing-keys";
import { OIDC_SCOPES } from "../auth/oauth-server/policy";
import { getConfig } from "../config";
import { ApiError } from "../errors";
import { log } from "../log";
import { healthSchema, jwksSchema, messageSchema } from "../response-schemas";
import { discoverySchema } from "../response-schemas-oauth";
import { keyStores, stores } from "../stores";
import { errors, json, openApiApp } from "./openapi";

const tags = ["Service"];

const rootRoute = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "What this is",
  responses: { 200: json(messageSchema, "The service's name and where its docs are") },
});

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags,
  summary: "Whether D1 and KV answer",
  responses: { 200: json(healthSchema, "Both answer"), ...errors() },
});

const jwksRoute = createRoute({
  method: "get",
  path: "/.well-known/jwks.json",
  tags,
  summary: "The public keys that verify access tokens (RFC 7517)",
  responses: { 200: json(jwksSchema, "Public JWKs, cacheable for JWKS_MAX_AGE seconds (10 minutes by default)") },
});

const discovery = (path: string) =>
  createRoute({
    method: "get",
    path,
    tags,
    summary: "Issuer metadata: what resource servers and apps configure themselves from (RFC 8414 / OpenID Connect Discovery)",
    description:
      "Exactly what this API serves: its issuer and JWKS, the authorization server's endpoints (docs/oauth-server.md) and what they support, the claims and algorithm of its tokens, and its own JSON endpoints (login_endpoint, refresh_endpoint, logout_endpoint are extensions). A resource server needs only the issuer URL (and its audience).",
    responses: { 200: json(discoverySchema, "The metadata, cacheable for JWKS_MAX_AGE seconds") },
  });

/** The claims this issuer's tokens carry: the API's own (auth/core/tokens.ts) and an app's (auth/oauth-server/tokens.ts, claims.ts). */
const CLAIMS = ["iss", "aud", "sub", "jti", "iat", "exp", "sid", "roles", "username", "epoch", "auth_time", "amr", "email_verified", "guest"];
/** An active organization's, while the session acts for one (docs/organizations.md). */
const ORG_CLAIMS = ["org_id", "org_slug", "org_role", "org_permissions"];
const APP_CLAIMS = ["client_id", "scope", "azp", "nonce", "at_hash", "preferred_username", "email"];
const CLIENT_AUTH = ["client_secret_basic", "client_secret_post", "none"];

export const meta = openApiApp()
  .openapi(rootRoute, (c) =>
    c.json(
      {
        message:
          "edge-auth-api: JWT authentication on Cloudflare Workers. API reference at /docs, OpenAPI at /openapi.json, public keys at /.well-known/jwks.json, issuer metadata at /.well-known/openid-configuration",
      },
      200,
    ),
  )
  .openapi(healthRoute, async (c) => {
    try {
      await checkStores(stores(c));
    } catch (err) {
      log("health_failed", { request_id: c.get("requestId"), message: (err as Error).message }, "error");
      throw new ApiError("service_unavailable", "D1 or KV is not reachable");
    }
    return c.json({ status: "ok" as const }, 200);
  })
  .openapi(jwksRoute, async (c) => {
    // Verifiers may keep them JWKS_MAX_AGE: the ring publishes a key that long before it signs (docs/design.md).
    c.header("Cache-Control", cacheFor(c.env));
    return c.json((await activeKeys(keyStores(c))).jwks as z.infer<typeof jwksSchema>, 200);
  })
  .openapi(discovery("/.well-known/openid-configuration"), (c) => c.json(issuerMetadata(c.env), 200, { "Cache-Control": cacheFor(c.env) }))
  .openapi(discovery("/.well-known/oauth-authorization-server"), (c) => c.json(issuerMetadata(c.env), 200, { "Cache-Control": cacheFor(c.env) }));

const cacheFor = (env: Env) => `public, max-age=${getConfig(env).JWKS_MAX_AGE}`;

function issuerMetadata(env: Env): z.infer<typeof discoverySchema> {
  const { ISSUER, API_DOCS, OAUTH_SCOPES, OAUTH_REGISTRATION, OAUTH_CLIENT_METADATA_DOCUMENTS } = getConfig(env);
  const at = (path: string) => `${ISSUER.replace(/\/+$/, "")}${path}`;
  return {
    issuer: ISSUER, // exactly the tokens' iss: verifiers compare the two as strings
    jwks_uri: at("/.well-known/jwks.json"),
    authorization_endpoint: at("/oauth2/authorize"),
    token_endpoint: at("/oauth2/token"),
    revocation_endpoint: at("/oauth2/revoke"),
    userinfo_endpoint: at("/oauth2/userinfo"),
    ...(OAUTH_REGISTRATION === "closed" ? {} : { registration_endpoint: at("/oauth2/register") }),
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: CLIENT_AUTH,
    revocation_endpoint_auth_methods_supported: CLIENT_AUTH,
    scopes_supported: [...OIDC_SCOPES, ...OAUTH_SCOPES],
    prompt_values_supported: ["none", "login", "consent"],
    authorization_response_iss_parameter_supported: true, // RFC 9207
    // A client_id may be the URL of its metadata document (draft-ietf-oauth-client-id-metadata-document), while on.
    ...(OAUTH_CLIENT_METADATA_DOCUMENTS === "on" ? { client_id_metadata_document_supported: true } : {}),
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["ES256"],
    claims_supported: [...CLAIMS, ...ORG_CLAIMS, ...APP_CLAIMS],
    access_token_signing_alg_values_supported: ["ES256"],
    login_endpoint: at("/login"),
    refresh_endpoint: at("/refresh"),
    logout_endpoint: at("/logout"),
    // Only while /docs is served (API_DOCS): the metadata names nothing that answers 404.
    ...(API_DOCS === "on" ? { service_documentation: at("/docs") } : {}),
  };
}
