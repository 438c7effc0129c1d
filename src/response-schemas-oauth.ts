import { z } from "@hono/zod-openapi";

/**
 * The authorization server's answers (auth/oauth-server/, docs/oauth-server.md): the shapes its
 * RFCs fix, beside the API's own in response-schemas.ts.
 */

export const OAUTH_ERROR_CODES = [
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "unsupported_response_type",
  "invalid_scope",
  "invalid_target",
  "access_denied",
  "login_required",
  "consent_required",
  "invalid_token",
  "insufficient_scope",
  "invalid_client_metadata",
  "invalid_redirect_uri",
  "temporarily_unavailable",
] as const;

export const oauthErrorSchema = z
  .object({
    error: z.enum(OAUTH_ERROR_CODES),
    error_description: z.string(),
    message: z.string().openapi({ description: "the same words as error_description, as every error of this API has" }),
  })
  .openapi("OAuthError", {
    example: { error: "invalid_grant", error_description: "The code is invalid, expired or used", message: "The code is invalid, expired or used" },
  });

export const tokenResponseSchema = z
  .object({
    access_token: z.string().openapi({ description: "a JWT (RFC 9068, typ at+jwt) for the resource asked, verifiable with the JWKS alone" }),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int(),
    scope: z.string(),
    refresh_token: z
      .string()
      .optional()
      .openapi({ description: "with offline_access (or a client allowed refresh tokens): single use, rotated at each refresh" }),
    id_token: z.string().optional().openapi({ description: "with the openid scope, on the code's exchange (and on a refresh)" }),
    issued_token_type: z
      .literal("urn:ietf:params:oauth:token-type:access_token")
      .optional()
      .openapi({ description: "on an API key's exchange (RFC 8693): the token is an access token" }),
  })
  .openapi("TokenResponse");

export const userInfoSchema = z
  .object({
    sub: z.string(),
    preferred_username: z.string().optional().openapi({ description: "with the profile scope" }),
    email: z.string().optional().openapi({ description: "with the email scope, when the account has an address" }),
    email_verified: z.boolean().optional(),
  })
  .openapi("UserInfo");

const urls = z.array(z.string());

/** GET /.well-known/openid-configuration and /.well-known/oauth-authorization-server (RFC 8414, OpenID Connect Discovery): exactly what is served. */
export const discoverySchema = z
  .object({
    issuer: z.url(),
    jwks_uri: z.url(),
    authorization_endpoint: z.url(),
    token_endpoint: z.url(),
    revocation_endpoint: z.url(),
    userinfo_endpoint: z.url(),
    registration_endpoint: z.url().optional().openapi({ description: "only while OAUTH_REGISTRATION is open or token" }),
    response_types_supported: urls,
    response_modes_supported: urls,
    grant_types_supported: urls,
    code_challenge_methods_supported: urls,
    token_endpoint_auth_methods_supported: urls,
    revocation_endpoint_auth_methods_supported: urls,
    scopes_supported: urls,
    prompt_values_supported: urls,
    authorization_response_iss_parameter_supported: z.boolean(),
    client_id_metadata_document_supported: z
      .boolean()
      .optional()
      .openapi({ description: "present (true) while OAUTH_CLIENT_METADATA_DOCUMENTS is on: a client_id may be an https URL naming its metadata document" }),
    subject_types_supported: urls,
    id_token_signing_alg_values_supported: urls,
    claims_supported: urls,
    access_token_signing_alg_values_supported: urls,
    login_endpoint: z.url(),
    refresh_endpoint: z.url(),
    logout_endpoint: z.url(),
    service_documentation: z.url().optional(),
  })
  .openapi("IssuerMetadata");

/** POST /oauth2/register's answer (RFC 7591 3.2.1). */
export const registrationSchema = z
  .object({
    client_id: z.string(),
    client_id_issued_at: z.number().int(),
    client_secret: z.string().optional().openapi({ description: "for client_secret_basic or client_secret_post: shown this once" }),
    client_secret_expires_at: z.literal(0).optional().openapi({ description: "0: the secret does not expire" }),
    client_name: z.string(),
    client_uri: z.string().optional(),
    redirect_uris: z.array(z.string()),
    grant_types: z.array(z.string()),
    response_types: z.array(z.literal("code")),
    token_endpoint_auth_method: z.enum(["none", "client_secret_basic", "client_secret_post"]),
    scope: z.string(),
  })
  .openapi("ClientRegistration");
