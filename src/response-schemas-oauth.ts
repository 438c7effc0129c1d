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
  })
  .openapi("TokenResponse");
