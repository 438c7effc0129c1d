import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ExchangeRefused, exchangeKey, TOKEN_EXCHANGE } from "../auth/api-keys/exchange";
import { clientCredentials } from "../auth/oauth-server/client-credentials";
import { authenticateClient, credentialsOf } from "../auth/oauth-server/clients";
import { OAuthRefusal } from "../auth/oauth-server/errors";
import { refreshGrant } from "../auth/oauth-server/refresh-grant";
import { revokeToken, userInfo } from "../auth/oauth-server/revoke";
import { exchangeCode } from "../auth/oauth-server/token";
import { sha256Base64Url } from "../encoding";
import type { AppEnv } from "../env";
import { clientIp, ipKey } from "../middleware/client-ip";
import { enforceLimit, limitByIp } from "../middleware/rate-limit";
import { tokenResponseSchema, userInfoSchema } from "../response-schemas-oauth";
import { deps } from "./deps";
import { form, protocolErrors, protocolHook } from "./oauth-openapi";
import { json, openApiApp } from "./openapi";

/**
 * The authorization server's back-channel endpoints (docs/oauth-server.md): token (RFC 6749, PKCE,
 * RFC 8707), revocation (RFC 7009) and userinfo (OpenID Connect). Form bodies in, the protocol's
 * answers out; the flows are in auth/oauth-server/.
 */

const tags = ["Authorization server"];
const text = (max: number) => z.string().max(max);
const resources = z.union([text(2048), z.array(text(2048)).max(5)]).optional();
const asList = (r: string | string[] | undefined) => (r === undefined ? undefined : Array.isArray(r) ? r : [r]);
const clientFields = { client_id: text(512).optional(), client_secret: text(512).optional() };

const tokenForm = z.object({
  grant_type: text(64),
  code: text(512).optional(),
  redirect_uri: text(2048).optional(),
  code_verifier: text(256).optional(),
  refresh_token: text(512).optional(),
  scope: text(2048).optional(),
  resource: resources,
  // Token exchange (RFC 8693): an API key for an access token (docs/api-keys.md).
  subject_token: text(512).optional(),
  subject_token_type: text(256).optional(),
  ...clientFields,
});

const tokenRoute = createRoute({
  method: "post",
  path: "/oauth2/token",
  tags,
  summary: "Tokens for an app: a code's exchange (PKCE), a refresh, client_credentials (RFC 6749), or an API key's exchange (RFC 8693)",
  description:
    "Client authentication: client_secret_basic, client_secret_post, or none (a public client; PKCE binds its codes). A code is used once: a second use ends the grant the first opened. A refresh rotates the refresh token (a replay outside the grace window ends the grant) and may narrow the scope, never widen it or change the resource. An API key (grant_type urn:ietf:params:oauth:grant-type:token-exchange, subject_token the key, subject_token_type urn:edge-auth:params:oauth:token-type:api-key, optional scope) needs no client authentication: the key is the credential; the answer adds issued_token_type (docs/api-keys.md). A malformed key is refused without a lookup; exchanges are limited per client address and per key (429 rate_limited with Retry-After).",
  middleware: [limitByIp("OAUTH_TOKEN_IP_LIMITER")],
  request: form(tokenForm),
  responses: { 200: json(tokenResponseSchema, "The tokens"), ...protocolErrors(["payload_too_large", "unsupported_media_type", "rate_limited"]) },
});

const revokeRoute = createRoute({
  method: "post",
  path: "/oauth2/revoke",
  tags,
  summary: "Revoke an app's refresh or access token: the grant behind it ends (RFC 7009)",
  middleware: [limitByIp("OAUTH_TOKEN_IP_LIMITER")],
  request: form(z.object({ token: text(4096), token_type_hint: text(64).optional(), ...clientFields })),
  responses: {
    200: { description: "Revoked, or nothing to revoke: the same answer either way" },
    ...protocolErrors(["payload_too_large", "unsupported_media_type", "rate_limited"]),
  },
});

const userInfoRoute = (method: "get" | "post") =>
  createRoute({
    method,
    path: "/oauth2/userinfo",
    tags,
    summary: "The user an app's access token stands for, with the claims its scope allows (OpenID Connect)",
    security: [{ bearerAuth: [] }],
    middleware: [limitByIp("OAUTH_TOKEN_IP_LIMITER")],
    responses: { 200: json(userInfoSchema, "The claims"), ...protocolErrors(["rate_limited"], [400, 401, 403]) },
  });

/** An API key's exchange (auth/api-keys/exchange.ts): its limits are the route's, its refusals the protocol's. */
async function keyExchange(c: Context<AppEnv>, f: z.infer<typeof tokenForm>) {
  try {
    return await exchangeKey(deps(c), f, {
      perClient: () => enforceLimit(c, "API_KEY_IP_LIMITER", ipKey(clientIp(c))),
      // Keyed by a digest of the lookup hash: the audit row of a refusal never holds api_keys.key_hash itself.
      perKey: async (hash) => enforceLimit(c, "API_KEY_LIMITER", `key:${(await sha256Base64Url(hash)).slice(0, 22)}`),
    });
  } catch (err) {
    if (err instanceof ExchangeRefused) throw new OAuthRefusal(err.error, err.description);
    throw err;
  }
}

const bearerOf = (header: string | undefined) => /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header ?? "")?.[1];

export const oauthServer = openApiApp()
  .openapi(
    tokenRoute,
    async (c) => {
      const f = c.req.valid("form");
      const d = deps(c);
      if (f.grant_type === TOKEN_EXCHANGE) return c.json(await keyExchange(c, f), 200);
      const client = await authenticateClient(d, credentialsOf(c.req.header("authorization"), f));
      const resource = asList(f.resource);
      switch (f.grant_type) {
        case "authorization_code":
          if (!f.code) throw new OAuthRefusal("invalid_request", "code is required");
          return c.json(await exchangeCode(d, client, { code: f.code, redirect_uri: f.redirect_uri, code_verifier: f.code_verifier, resource }), 200);
        case "refresh_token":
          if (!f.refresh_token) throw new OAuthRefusal("invalid_request", "refresh_token is required");
          return c.json(await refreshGrant(d, client, { refresh_token: f.refresh_token, scope: f.scope, resource }), 200);
        case "client_credentials":
          return c.json(await clientCredentials(d, client, { scope: f.scope, resource }), 200);
        default:
          throw new OAuthRefusal("unsupported_grant_type", `grant_type must be authorization_code, refresh_token, client_credentials or ${TOKEN_EXCHANGE}`);
      }
    },
    protocolHook,
  )
  .openapi(
    revokeRoute,
    async (c) => {
      const f = c.req.valid("form");
      const d = deps(c);
      await revokeToken(d, await authenticateClient(d, credentialsOf(c.req.header("authorization"), f)), f.token);
      return c.body(null, 200);
    },
    protocolHook,
  )
  .openapi(userInfoRoute("get"), async (c) => c.json(await userInfo(deps(c), bearerOf(c.req.header("authorization"))), 200))
  .openapi(userInfoRoute("post"), async (c) => c.json(await userInfo(deps(c), bearerOf(c.req.header("authorization"))), 200));
