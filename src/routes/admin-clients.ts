import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { clientForAdmin, clientPage, createClient, deleteClientByAdmin, updateClientByAdmin } from "../auth/oauth-server/client-admin";
import type { OAuthClient } from "../db/oauth-server-tables";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import {
  clientCreateSchema,
  clientDeletedSchema,
  clientIdParamSchema,
  clientPatchSchema,
  clientsPageSchema,
  createdClientSchema,
  listClientsQuerySchema,
  oauthClientSchema,
} from "../schemas-clients";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp } from "./openapi";
import { page, timeIdCursor } from "./pagination";
import { asked, sensitive } from "./step-up";

const admin = { security: BEARER, tags: ["Admin"] };
const STEP_UP_ERRORS = ["invalid_token", "forbidden", "invalid_credentials", "invalid_mfa_code", "reauthentication_required", "rate_limited"] as const;
const STEP_UP_TEXT =
  "Takes the acting admin's step-up (manage_clients): `current_password`, and a code or recovery code while TOTP is on. Audited with the acting admin.";

const createRouteDef = sensitive(
  "manage_clients",
  createRoute({
    ...admin,
    method: "post",
    path: "/clients",
    summary: "Register an app that may ask users for access (role admin)",
    description: `${STEP_UP_TEXT} A confidential client's \`client_secret\` (256 random bits) is in this answer only: it is stored as its SHA-256 and never shown again.`,
    middleware: [jsonOnly],
    request: body(clientCreateSchema),
    responses: { 201: json(createdClientSchema, "Registered"), ...errors(...BODY_ERRORS, ...STEP_UP_ERRORS) },
  }),
);

const listRoute = createRoute({
  ...admin,
  method: "get",
  path: "/clients",
  summary: "Every registered app, newest first, a page at a time (role admin)",
  request: { query: listClientsQuerySchema },
  responses: { 200: json(clientsPageSchema, "A page of clients"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden") },
});

const getRoute = createRoute({
  ...admin,
  method: "get",
  path: "/clients/{id}",
  summary: "One registered app (role admin); never its secret",
  request: { params: clientIdParamSchema },
  responses: { 200: json(oauthClientSchema, "The client"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden", "not_found") },
});

const patchRoute = sensitive(
  "manage_clients",
  createRoute({
    ...admin,
    method: "patch",
    path: "/clients/{id}",
    summary: "Change, disable or enable an app (role admin); disabling ends every grant it holds at once",
    description: `Disabling alone (\`{"disabled": true}\`) takes no step-up: taking access away stays quick. Any other change does. ${STEP_UP_TEXT} A disabled client gets no request, code, token or refresh; its grants end in D1 and KV (a 503 means: send it again). Enabling it again does not bring the grants back. Grants keep what they were granted; the type and grant types cannot change (register a new client). A client declared in the configuration (OAUTH_CLIENTS, source \`config\`) may only be disabled or enabled here: anything else answers 403 forbidden.`,
    middleware: [jsonOnly],
    request: { params: clientIdParamSchema, ...body(clientPatchSchema) },
    responses: { 200: json(oauthClientSchema, "The client, changed"), ...errors(...BODY_ERRORS, ...STEP_UP_ERRORS, "not_found") },
  }),
);

const deleteRoute = createRoute({
  ...admin,
  method: "delete",
  path: "/clients/{id}",
  summary: "Delete an app (role admin): every grant it holds ends, its requests and users' consents go",
  description:
    "No step-up: it only takes access away. A 503 means the grants' revocation could not be completed: send it again. A client declared in the configuration (OAUTH_CLIENTS) answers 403 forbidden: remove it there (then its row may be deleted here, which ends its grants), or disable it.",
  request: { params: clientIdParamSchema },
  responses: { 200: json(clientDeletedSchema, "Deleted"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden", "not_found") },
});

const iso = (d: Date | null) => d?.toISOString() ?? null;
const clientView = (c: OAuthClient) => ({
  client_id: c.id,
  name: c.name,
  uri: c.uri,
  redirect_uris: c.redirectUris,
  type: c.secretHash === null ? ("public" as const) : ("confidential" as const),
  grant_types: c.grantTypes,
  scope: c.scope,
  resources: c.resources,
  source: c.source,
  created_at: c.createdAt.toISOString(),
  disabled: c.disabledAt !== null,
  disabled_at: iso(c.disabledAt),
});

/**
 * A belt under the admin guard: this sub-app is mounted at /admin beside routes/admin.ts's, whose
 * requireRole("admin") covers every /admin path (one token check, one KV read). Were it ever served
 * elsewhere, nothing here would answer without an admin's verified token.
 */
const verifiedAdmin = createMiddleware<AppEnv>(async function verifiedAdmin(c, next) {
  if (!c.get("auth")?.roles.includes("admin")) throw new ApiError("forbidden", "Requires the admin role");
  await next();
});

/** Mounted at /admin after routes/admin.ts's adminApp (src/app.ts). */
export const adminClients = openApiApp();
adminClients.use("/clients", verifiedAdmin);
adminClients.use("/clients/*", verifiedAdmin);
adminClients
  .openapi(createRouteDef, async (c) => {
    const { current_password, code, recovery_code, ...input } = c.req.valid("json");
    const { client, secret } = await createClient(deps(c), asked(c, createRouteDef), input, { current_password, code, recovery_code });
    return c.json({ ...clientView(client), ...(secret ? { client_secret: secret } : {}) }, 201);
  })
  .openapi(listRoute, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const rows = await clientPage(deps(c), limit + 1, cursor ? timeIdCursor(cursor) : undefined);
    const { items, next_cursor } = page(rows, limit, (r) => [r.createdAt.getTime(), r.id]);
    return c.json({ clients: items.map(clientView), next_cursor }, 200);
  })
  .openapi(getRoute, async (c) => c.json(clientView(await clientForAdmin(deps(c), c.req.valid("param").id)), 200))
  .openapi(patchRoute, async (c) => {
    const { current_password, code, recovery_code, ...patch } = c.req.valid("json");
    const client = await updateClientByAdmin(deps(c), asked(c, patchRoute), c.req.valid("param").id, patch, { current_password, code, recovery_code });
    return c.json(clientView(client), 200);
  })
  .openapi(deleteRoute, async (c) => {
    const revoked = await deleteClientByAdmin(deps(c), c.get("auth"), c.req.valid("param").id);
    return c.json({ message: "Client deleted", grants_revoked: revoked }, 200);
  });
