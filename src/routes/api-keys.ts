import { createRoute } from "@hono/zod-openapi";
import { type ApiKey, createKey, listKeys, ownerOf, revokeKey } from "../auth/api-keys/keys";
import { jsonOnly } from "../middleware/json-only";
import { requireAuth } from "../middleware/require-auth";
import { messageSchema } from "../response-schemas";
import { type apiKeySchema, createdKeySchema, keysSchema } from "../response-schemas-keys";
import { keyCreateSchema, keyIdParamSchema, keyListQuerySchema } from "../schemas-keys";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp } from "./openapi";
import { asked, sensitive } from "./step-up";

/**
 * API keys (docs/api-keys.md): a user's or an organization's, created with a step-up, listed and
 * revoked. The exchange for an access token is a grant of POST /oauth2/token (routes/oauth-server.ts).
 */

const authed = requireAuth();
const bearer = { security: BEARER, tags: ["API keys"] };

const createRouteDef = sensitive(
  "create_api_key",
  createRoute({
    ...bearer,
    method: "post",
    path: "/keys",
    summary: "Create an API key for yourself or for an organization; the key is in this answer only",
    description:
      "Takes a step-up (create_api_key): `current_password`, and a code or recovery code while TOTP is on. A user's key: `scopes` among the caller's roles. An organization's key (`org_id`): the caller's role there needs keys:manage and `scopes` among its permissions; the key outlives the caller's membership. Wider: 403 scope_not_allowed. At most 100 live keys per owner, and 300 with the revoked ones not yet removed (409 too_many_api_keys). Exchange it at POST /oauth2/token (grant_type urn:ietf:params:oauth:grant-type:token-exchange).",
    middleware: [authed, jsonOnly] as const,
    request: body(keyCreateSchema),
    responses: {
      201: json(createdKeySchema, "Created: the key (`secret`) is shown this once"),
      ...errors(
        ...BODY_ERRORS,
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "reauthentication_required",
        "forbidden",
        "scope_not_allowed",
        "not_found",
        "too_many_api_keys",
        "rate_limited",
      ),
    },
  }),
);

const listRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/keys",
  summary: "Your API keys, or an organization's (keys:read), newest first; never a key",
  description: "Revoked and expired keys stay listed (with revoked_at, expires_at) until the daily cron removes them 30 days later.",
  middleware: [authed] as const,
  request: { query: keyListQuerySchema },
  responses: { 200: json(keysSchema, "The keys"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden", "not_found") },
});

const deleteRoute = createRoute({
  ...bearer,
  method: "delete",
  path: "/keys/{id}",
  summary: "Revoke an API key (yours, or an organization's with keys:manage)",
  description:
    "No step-up: it only takes access away. Exchanges are refused from this moment on; access tokens already issued for the key live out their ACCESS_TOKEN_TTL at resource servers.",
  middleware: [authed] as const,
  request: { params: keyIdParamSchema },
  responses: { 200: json(messageSchema, "Revoked"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden", "not_found") },
});

const iso = (d: Date | null) => d?.toISOString() ?? null;
const keyView = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  start: k.start,
  scopes: k.scopes,
  owner: ownerOf(k),
  created_by: k.createdBy,
  created_at: k.createdAt.toISOString(),
  expires_at: iso(k.expiresAt),
  last_used_at: iso(k.lastUsedAt),
  revoked_at: iso(k.revokedAt),
});
// The view must match the documented shape (a field added to one and not the other fails to compile).
keyView satisfies (k: ApiKey) => typeof apiKeySchema._output;

export const apiKeys = openApiApp()
  .openapi(createRouteDef, async (c) => {
    const { current_password, code, recovery_code, ...input } = c.req.valid("json");
    const { key, secret } = await createKey(deps(c), asked(c, createRouteDef), input, { current_password, code, recovery_code });
    return c.json({ key: keyView(key), secret }, 201);
  })
  .openapi(listRoute, async (c) => c.json({ keys: (await listKeys(deps(c), c.get("auth"), c.req.valid("query").org_id)).map(keyView) }, 200))
  .openapi(deleteRoute, async (c) => {
    await revokeKey(deps(c), c.get("auth"), c.req.valid("param").id);
    return c.json({ message: "Key revoked" }, 200);
  });
