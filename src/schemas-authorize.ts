import { z } from "@hono/zod-openapi";

/**
 * The authorization request's query (RFC 6749 4.1.1, RFC 7636, RFC 8707, OpenID Connect 3.1.2.1).
 * Only what cannot be read at all is refused here (400, never redirected); what the parameters mean
 * is judged by auth/oauth-server/authorize.ts, whose refusals go back to a verified redirect_uri.
 */
const param = (description: string, max = 2048) => z.string().max(max).optional().openapi({ description });

export const authorizeQuerySchema = z.object({
  response_type: param("code (the only type supported)", 64),
  client_id: param("the app's client_id", 512),
  redirect_uri: param("one of the client's registered redirect URIs (a loopback one on any port); optional when it has exactly one"),
  state: param("the app's value, returned as is (at most 1024 characters)"),
  scope: param("space-separated scopes within the client's; none: all of the client's"),
  resource: z
    .union([z.string().max(2048), z.array(z.string().max(2048)).max(4)])
    .optional()
    .openapi({ description: "RFC 8707: the API the tokens are for (one for now)" }),
  code_challenge: param("PKCE: base64url SHA-256 of the code_verifier (43 characters), required for every client", 128),
  code_challenge_method: param("S256 (the only method accepted)", 16),
  nonce: param("OpenID Connect: echoed in the id_token (at most 512 characters)"),
  prompt: param("none, login or consent (login and consent may be combined)", 64),
  max_age: param("seconds since the user's last sign-in beyond which the user must sign in again", 16),
});
