import { createRoute, z } from "@hono/zod-openapi";
import { OAuthRefusal } from "../auth/oauth-server/errors";
import { mayRegister, registerClient } from "../auth/oauth-server/registration";
import { jsonOnly } from "../middleware/json-only";
import { limitByIp } from "../middleware/rate-limit";
import { registrationSchema } from "../response-schemas-oauth";
import { deps } from "./deps";
import { protocolErrors } from "./oauth-openapi";
import { body, json, openApiApp } from "./openapi";

/** Dynamic client registration (RFC 7591): POST /oauth2/register, under OAUTH_REGISTRATION's policy (docs/oauth-server.md). */

const short = (max: number) => z.string().max(max);
// RFC 7591 2: metadata the server does not understand is ignored (zod drops unknown fields).
const registrationRequest = z
  .object({
    redirect_uris: z.array(short(2000)).min(1).max(10),
    client_name: short(100).optional(),
    client_uri: short(2000).optional(),
    grant_types: z.array(short(64)).max(5).optional(),
    response_types: z.array(short(64)).max(5).optional(),
    token_endpoint_auth_method: z.enum(["none", "client_secret_basic", "client_secret_post"]).optional(),
    scope: short(2000).optional(),
  })
  .openapi("ClientRegistrationRequest");

const registerRoute = createRoute({
  method: "post",
  path: "/oauth2/register",
  tags: ["Authorization server"],
  summary: "An app registers itself (RFC 7591), when OAUTH_REGISTRATION allows it",
  description:
    "closed: 403 access_denied. token: the initial access token as a Bearer token. A registration that gets no token within OAUTH_UNUSED_CLIENT_TTL lapses. Only authorization_code (and refresh_token) clients: client_credentials is registered by an admin.",
  middleware: [limitByIp("OAUTH_REGISTER_IP_LIMITER"), jsonOnly],
  request: body(registrationRequest),
  responses: {
    201: json(registrationSchema, "The client: its id, and a secret (shown this once) unless token_endpoint_auth_method is none"),
    ...protocolErrors(["invalid_request", "payload_too_large", "unsupported_media_type", "rate_limited"], [400, 401, 403, 429]),
  },
});

/** A field the schema refuses is the protocol's invalid_redirect_uri or invalid_client_metadata (RFC 7591 3.2.2). */
function metadataHook(result: { success: true } | { success: false; error: { issues: readonly z.core.$ZodIssue[] } }): undefined {
  if (result.success) return undefined;
  const issue = result.error.issues[0];
  const field = issue?.path.join(".") || "request";
  throw new OAuthRefusal(field.startsWith("redirect_uris") ? "invalid_redirect_uri" : "invalid_client_metadata", `${field}: ${issue?.message ?? "invalid"}`);
}

const bearerOf = (header: string | undefined) => /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header ?? "")?.[1];

export const oauthRegister = openApiApp().openapi(
  registerRoute,
  async (c) => {
    const d = deps(c);
    await mayRegister(d, bearerOf(c.req.header("authorization")));
    return c.json(await registerClient(d, c.req.valid("json")), 201);
  },
  metadataHook,
);
