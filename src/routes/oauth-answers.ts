import type { Context } from "hono";
import type { OAuthRefusal } from "../auth/oauth-server/errors";
import type { AppEnv } from "../env";

/**
 * How the authorization server answers in the protocol's words (RFC 6749): a refusal as
 * `{error, error_description}` (never the API's envelope: clients parse these).
 */

export function protocolError(c: Context<AppEnv>, refusal: OAuthRefusal) {
  // RFC 6750 3: a refused bearer token names the scheme and the error.
  if (refusal.error === "invalid_token" || refusal.error === "insufficient_scope")
    c.header("WWW-Authenticate", `Bearer error="${refusal.error}", error_description="${refusal.description.replace(/"/g, "'")}"`);
  if (refusal.error === "invalid_client" && c.req.header("authorization")?.startsWith("Basic ")) c.header("WWW-Authenticate", 'Basic realm="oauth"');
  return c.json({ error: refusal.error, error_description: refusal.description }, refusal.status);
}
