import { z } from "@hono/zod-openapi";
import { displayName, notBoth, stepUpExample, stepUpFields } from "./schemas";

/**
 * Requests and answers of the clients' admin area (POST|GET|PATCH|DELETE /admin/clients) and of a
 * user's connected apps (GET|DELETE /account/apps). The shape is checked here; the rules that need
 * the configuration or are the authorization server's policy (redirect URIs, known scopes,
 * resources) are auth/oauth-server/client-admin.ts's, which answers validation_failed with fields.
 */

const name = displayName.openapi({ description: "shown to users on the consent page", example: "Example Notes" });
const uri = z
  .string({ error: "must be a string" })
  .max(2000, "at most 2000 characters")
  .openapi({ description: "the app's home page (http or https), shown on the consent page", example: "https://notes.example" });
const redirectUris = z
  .array(z.string({ error: "must be a string" }).max(2000, "at most 2000 characters"), { error: "must be a list of URIs" })
  .min(1, "at least one")
  .max(10, "at most 10")
  .openapi({
    description:
      "exact redirect URIs: https; http only on a loopback host (127.0.0.1, [::1], localhost; any port at use, RFC 8252 7.3); or a private-use scheme of a native app in reverse-domain form (com.example.app:/callback, RFC 8252 7.1). No fragment.",
    example: ["https://notes.example/callback"],
  });
const scope = z.string({ error: "must be a string" }).max(1000, "at most 1000 characters").openapi({
  description: "the scopes it may ask for, space separated: openid profile email offline_access or one of OAUTH_SCOPES",
  example: "openid profile",
});
const resources = z
  .array(z.string({ error: "must be a string" }).max(2000, "at most 2000 characters"), { error: "must be a list of URIs" })
  .max(10, "at most 10")
  .openapi({ description: "resources (RFC 8707) it may ask tokens for besides OAUTH_RESOURCES: absolute URIs, no fragment, never this API's AUDIENCE" });
export const GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"] as const;

export const clientCreateSchema = z
  .object({
    name,
    uri: uri.optional(),
    redirect_uris: redirectUris,
    type: z.enum(["public", "confidential"], { error: "public or confidential" }).openapi({
      description: "confidential: a server that keeps a secret (handed out once, in this answer); public: a browser or native app (PKCE only)",
    }),
    grant_types: z
      .array(z.enum(GRANT_TYPES, { error: "authorization_code, refresh_token or client_credentials" }))
      .min(1, "at least one")
      .max(3, "at most 3")
      .optional()
      .openapi({ description: "default authorization_code and refresh_token; client_credentials only for a confidential client" }),
    scope: scope.optional(),
    resources: resources.optional(),
    ...stepUpFields,
  })
  .refine(...notBoth)
  .openapi("OAuthClientCreate", {
    description: "takes the acting admin's step-up (manage_clients): the password, and a code while TOTP is on",
    example: { name: "Example Notes", redirect_uris: ["https://notes.example/callback"], type: "confidential", ...stepUpExample },
  });

export const clientPatchSchema = z
  .object({
    name: name.optional(),
    uri: uri.nullable().optional(),
    redirect_uris: redirectUris.optional(),
    scope: scope.optional(),
    resources: resources.optional(),
    disabled: z.boolean({ error: "must be true or false" }).optional(),
    ...stepUpFields,
  })
  .refine((v) => [v.name, v.uri, v.redirect_uris, v.scope, v.resources, v.disabled].some((f) => f !== undefined), {
    message: "send at least one of name, uri, redirect_uris, scope, resources, disabled",
    path: ["_"],
  })
  .refine(...notBoth)
  .openapi("OAuthClientChange", {
    description:
      "disabled: true alone takes no step-up (taking access away stays quick); any other change does (manage_clients). Disabling ends every grant of the client at once.",
    example: { redirect_uris: ["https://notes.example/callback", "https://notes.example/cb2"], current_password: "correct horse 42" },
  });

export const clientIdParamSchema = z.object({
  id: z
    .string()
    .max(512, "is not a client id")
    .openapi({ param: { name: "id", in: "path" }, example: "Xq3v9JzK2mYb1T0cW7uA4g" }),
});
export const appClientIdParamSchema = z.object({
  client_id: z
    .string()
    .max(512, "is not a client id")
    .openapi({ param: { name: "client_id", in: "path" }, example: "Xq3v9JzK2mYb1T0cW7uA4g" }),
});

const cursor = z.string().max(200, "is not a valid cursor").optional();
export const listClientsQuerySchema = z.object({
  cursor,
  limit: z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(1, "at least 1").max(100, "at most 100").default(20),
});

// ---- Answers ----

const clientFields = {
  client_id: z.string(),
  name: z.string(),
  uri: z.string().nullable(),
  redirect_uris: z.array(z.string()),
  type: z.enum(["public", "confidential"]),
  grant_types: z.array(z.string()),
  scope: z.string(),
  resources: z.array(z.string()),
  source: z
    .enum(["admin", "dynamic", "metadata", "config"])
    .openapi({ description: "who registered it: an admin, dynamic registration, a metadata document, or the configuration (OAUTH_CLIENTS)" }),
  created_at: z.iso.datetime(),
  disabled: z.boolean(),
  disabled_at: z.iso.datetime().nullable(),
};
export const oauthClientSchema = z.object(clientFields).openapi("OAuthClient");
// Its own object, not an extension of OAuthClient: the document lists every field of an answer in one place.
export const createdClientSchema = z
  .object({
    ...clientFields,
    client_secret: z.string().optional().openapi({ description: "confidential clients: shown this once, stored only as its SHA-256; never shown again" }),
  })
  .openapi("OAuthClientCreated");
export const clientsPageSchema = z
  .object({
    clients: z.array(oauthClientSchema),
    next_cursor: z.string().nullable().openapi({ description: "pass as cursor for the next page; null on the last" }),
  })
  .openapi("OAuthClientsPage");
export const clientDeletedSchema = z.object({ message: z.string(), grants_revoked: z.number().int() }).openapi("OAuthClientDeleted");

export const connectedAppSchema = z
  .object({
    client_id: z.string(),
    name: z.string(),
    uri: z.string().nullable(),
    scopes: z.array(z.string()).openapi({ description: "what it holds or may get without asking again: its live grants' scopes and the remembered consent's" }),
    resources: z.array(z.string()).openapi({ description: "the resources (RFC 8707) those are for" }),
    connected_at: z.iso.datetime().openapi({ description: "the earliest live grant, or the consent when no grant is live" }),
    last_used_at: z.iso.datetime().nullable().openapi({ description: "the latest refresh of a live grant; null with none" }),
    grants: z.number().int().openapi({ description: "live grants (refreshable): one per sign-in the app holds" }),
    consent_remembered: z.boolean().openapi({ description: "a remembered consent: the app can get a new grant without asking (prompt=none)" }),
  })
  .openapi("ConnectedApp");
export const connectedAppsSchema = z.object({ apps: z.array(connectedAppSchema) }).openapi("ConnectedApps");
export const appDisconnectedSchema = z
  .object({ message: z.string(), grants_revoked: z.number().int(), consents_removed: z.number().int() })
  .openapi("AppDisconnected");
