// The Hono app, built once per isolate: global middleware, one sub-app per area, the OpenAPI
// document and docs page, onError and 404/405. src/index.ts hands it to the Workers runtime.
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { getConfig } from "./config";
import { devFaults } from "./dev-faults";
import type { AppEnv } from "./env";
import { ApiError, notFoundHandler, onError } from "./errors";
import { everyAnswer } from "./middleware/every-answer";
import { validationHook } from "./middleware/validate";
import { account } from "./routes/account";
import { adminApp } from "./routes/admin";
import { adminClients } from "./routes/admin-clients";
import { adminOrganizations } from "./routes/admin-orgs";
import { apiKeys } from "./routes/api-keys";
import { auth } from "./routes/auth";
import { connectedAppsRoutes } from "./routes/connected-apps";
import { docsHeaders, mountDocs } from "./routes/docs";
import { guests } from "./routes/guests";
import { invitations } from "./routes/invitations";
import { mailSignIn } from "./routes/mail-sign-in";
import { meta } from "./routes/meta";
import { mfa } from "./routes/mfa";
import { oauth } from "./routes/oauth";
import { oauthAuthorize } from "./routes/oauth-authorize";
import { oauthRegister } from "./routes/oauth-register";
import { oauthRequests } from "./routes/oauth-requests";
import { oauthServer } from "./routes/oauth-server";
import { organizationRoutes } from "./routes/organizations";
import { passkeys } from "./routes/passkeys";
import { recovery } from "./routes/recovery";
import { turnstileConfig } from "./routes/turnstile";

// Every request body here is a small JSON object; refuse anything larger before parsing it.
const MAX_BODY_BYTES = 16 * 1024;

// Built once per isolate, not per request. Not strict: /login/ is /login, as clients expect.
export const app = new OpenAPIHono<AppEnv>({ strict: false, defaultHook: validationHook });

app.use(everyAnswer); // request id, no-store, the optional log line
app.use(devFaults); // local dev only: injected D1 and KV faults (off: nothing)
// The headers that matter for JSON (OWASP's REST list): the ones only an HTML document acts on are
// off, each being a cost on every answer (the docs page, the one HTML answer, keeps all of them).
// Nothing here sets X-Powered-By, so there is nothing to remove.
const apiHeaders = secureHeaders({
  contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
  strictTransportSecurity: "max-age=31536000; includeSubDomains",
  xFrameOptions: "DENY",
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  removePoweredBy: false,
});
// Every answer is data, never a page to render, except the docs page (routes/docs.ts).
app.use(function headers(c, next) {
  return (c.req.path === "/docs" ? docsHeaders : apiHeaders)(c, next);
});
// Browser apps on other origins: only CORS_ORIGINS, echoed exactly (never "*"), with credentials
// so cookie mode works. A request without Origin is no CORS request (a server, curl): it skips the
// middleware, which costs a placeholder response per request, but keeps Vary: Origin for caches.
// OPTIONS always gets the middleware's 204, with or without Origin.
const corsHeaders = cors({
  origin: (origin, c) => (getConfig(c.env).CORS_ORIGINS.includes(origin) ? origin : null),
  credentials: true,
  allowMethods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
  // cf-turnstile-response: the Turnstile widget's token on sign-up, mail sign-in, forgot-password and guests.
  allowHeaders: ["Content-Type", "Authorization", "cf-turnstile-response"],
  exposeHeaders: ["Retry-After", "WWW-Authenticate", "X-Request-Id"],
  maxAge: 600,
});
// The authorization server's public protocol endpoints answer any origin, without credentials: a
// browser-based OAuth or MCP client (an SPA, the MCP Inspector) discovers, registers and exchanges
// from its own origin, and nothing there rides on a cookie (PKCE and client credentials carry it).
const PUBLIC_PROTOCOL = new Set([
  "/.well-known/openid-configuration",
  "/.well-known/oauth-authorization-server",
  "/.well-known/jwks.json",
  "/oauth2/token",
  "/oauth2/revoke",
  "/oauth2/register",
  "/oauth2/userinfo",
]);
const anyOrigin = cors({
  origin: "*",
  allowMethods: ["GET", "POST", "OPTIONS"],
  allowHeaders: ["Content-Type", "Authorization"],
  exposeHeaders: ["Retry-After", "WWW-Authenticate", "X-Request-Id"],
  maxAge: 600,
});
app.use(async function corsForBrowsers(c, next) {
  if (PUBLIC_PROTOCOL.has(c.req.path)) return anyOrigin(c, next);
  if (c.req.header("origin") !== undefined || c.req.method === "OPTIONS") return corsHeaders(c, next);
  await next();
  c.header("Vary", "Origin", { append: true });
});
// Only methods that carry a body: a GET skips the layer.
app.on(
  ["POST", "PUT", "PATCH", "DELETE"],
  "*",
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError("payload_too_large");
    },
  }),
);

app.route("/", meta);
app.route("/", auth);
app.route("/", mailSignIn);
app.route("/", account);
app.route("/", recovery);
app.route("/", turnstileConfig);
app.route("/", mfa);
app.route("/", passkeys);
app.route("/", oauth);
app.route("/", oauthAuthorize);
app.route("/", oauthRequests);
app.route("/", oauthServer);
app.route("/", oauthRegister);
app.route("/", connectedAppsRoutes);
app.route("/", organizationRoutes);
app.route("/", apiKeys);
app.route("/", invitations);
app.route("/", guests);
app.route("/admin", adminApp);
app.route("/admin", adminClients); // after adminApp: its guard covers every /admin path
app.route("/admin", adminOrganizations);
mountDocs(app);

app.onError(onError);
app.notFound(notFoundHandler(app.routes));
