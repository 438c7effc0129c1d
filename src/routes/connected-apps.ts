import { createRoute } from "@hono/zod-openapi";
import { connectedApps, disconnectApp } from "../auth/oauth-server/connected-apps";
import { requireAuth } from "../middleware/require-auth";
import { appClientIdParamSchema, appDisconnectedSchema, connectedAppsSchema } from "../schemas-clients";
import { deps } from "./deps";
import { BEARER, errors, json, openApiApp } from "./openapi";

const bearer = { security: BEARER, middleware: [requireAuth()], tags: ["Account"] };

const listRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/account/apps",
  summary: "The apps the user let in: their live grants grouped by app, and apps with a remembered consent",
  description:
    "One entry per app: the scopes and resources it holds or may get again without asking, when it was connected, when it last refreshed, how many live grants (one per sign-in to the app) it holds, and whether a consent is remembered.",
  responses: { 200: json(connectedAppsSchema, "The apps"), ...errors("invalid_request", "invalid_token") },
});

const disconnectRoute = createRoute({
  ...bearer,
  method: "delete",
  path: "/account/apps/{client_id}",
  summary: "Disconnect an app: its grants end (refresh tokens now; access tokens where this API checks them), its consents are forgotten",
  description:
    "404 not_found when the user has nothing with that app. A 503 means the revocation could not be completed: send it again. Access tokens already handed to a resource server live until they expire (ACCESS_TOKEN_TTL): resource servers check signatures, not this API.",
  request: { params: appClientIdParamSchema },
  responses: {
    200: json(appDisconnectedSchema, "Disconnected"),
    ...errors("invalid_request", "validation_failed", "invalid_token", "not_found"),
  },
});

export const connectedAppsRoutes = openApiApp();
connectedAppsRoutes
  .openapi(listRoute, async (c) => {
    const apps = await connectedApps(deps(c), c.get("auth"));
    const view = apps.map((a) => ({
      client_id: a.clientId,
      name: a.name,
      uri: a.uri,
      scopes: a.scopes,
      resources: a.resources,
      connected_at: a.connectedAt.toISOString(),
      last_used_at: a.lastUsedAt?.toISOString() ?? null,
      grants: a.grants,
      consent_remembered: a.consentRemembered,
    }));
    return c.json({ apps: view }, 200);
  })
  .openapi(disconnectRoute, async (c) => {
    const done = await disconnectApp(deps(c), c.get("auth"), c.req.valid("param").client_id);
    return c.json({ message: "App disconnected", grants_revoked: done.grantsRevoked, consents_removed: done.consentsRemoved }, 200);
  });
