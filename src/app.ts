// The Hono app: global middleware, one sub-app per area, the OpenAPI document and docs page, onError
// and 404/405. src/index.ts hands handle() to the Workers runtime. Each area (its routes and their
// schemas) is loaded at the first request whose path may be its own, so an isolate's startup builds
// none of them and never builds the areas it is not asked for (docs/performance.md, Workers).
import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler, Schema } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { NONCE, secureHeaders } from "hono/secure-headers";
import { getPathNoStrict } from "hono/utils/url";
import { getConfig } from "./config";
import { devFaults } from "./dev-faults";
import type { AppEnv } from "./env";
import { ApiError, notFoundHandler, onError } from "./errors";
import { everyAnswer } from "./middleware/every-answer";
import { validationHook } from "./middleware/validate";

// Every request body here is a small JSON object; refuse anything larger before parsing it.
const MAX_BODY_BYTES = 16 * 1024;

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
/**
 * The security headers of the docs page (routes/docs.ts), the only page with a script: its own CSP allows this origin's
 * pinned script (SRI-checked) and its nonced config, inline styles, and calls to this API; nothing from
 * another origin. The API keeps default-src 'none'.
 */
const docsHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: [NONCE, "'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    fontSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
  },
  strictTransportSecurity: "max-age=31536000; includeSubDomains",
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
const corsForBrowsers: MiddlewareHandler<AppEnv> = async function corsForBrowsers(c, next) {
  if (PUBLIC_PROTOCOL.has(c.req.path)) return anyOrigin(c, next);
  if (c.req.header("origin") !== undefined || c.req.method === "OPTIONS") return corsHeaders(c, next);
  await next();
  c.header("Vary", "Origin", { append: true });
};
const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ApiError("payload_too_large");
  },
});

type Mount = (app: OpenAPIHono<AppEnv>) => void;
/** An area: the paths its routes are under (a path, or anything below it), and its routes, imported when first wanted. */
type Area = { under: string[]; load: () => Promise<Mount> };
const at =
  <S extends Schema>(path: string, sub: OpenAPIHono<AppEnv, S>): Mount =>
  (app) =>
    app.route(path, sub);

// In the order they are mounted (the order decides which of two matching routes answers). Every route
// must be under one of its area's paths (test/node/openapi.test.ts checks it): a request then loads
// every area that could answer it, so its answer, and a 404 or 405, are what the whole app would give.
export const AREAS: Area[] = [
  { under: ["/", "/health", "/.well-known"], load: async () => at("/", (await import("./routes/meta")).meta) },
  { under: ["/register", "/login", "/refresh", "/logout"], load: async () => at("/", (await import("./routes/auth")).auth) },
  { under: ["/login/email"], load: async () => at("/", (await import("./routes/mail-sign-in")).mailSignIn) },
  { under: ["/protected", "/me", "/password", "/sessions"], load: async () => at("/", (await import("./routes/account")).account) },
  { under: ["/email", "/password/forgot", "/password/reset", "/ways-in"], load: async () => at("/", (await import("./routes/recovery")).recovery) },
  { under: ["/turnstile"], load: async () => at("/", (await import("./routes/turnstile")).turnstileConfig) },
  { under: ["/mfa"], load: async () => at("/", (await import("./routes/mfa")).mfa) },
  { under: ["/passkeys"], load: async () => at("/", (await import("./routes/passkeys")).passkeys) },
  { under: ["/oauth", "/me/identities"], load: async () => at("/", (await import("./routes/oauth")).oauth) },
  { under: ["/oauth2/authorize"], load: async () => at("/", (await import("./routes/oauth-authorize")).oauthAuthorize) },
  { under: ["/oauth2/requests"], load: async () => at("/", (await import("./routes/oauth-requests")).oauthRequests) },
  { under: ["/oauth2/token", "/oauth2/revoke", "/oauth2/userinfo"], load: async () => at("/", (await import("./routes/oauth-server")).oauthServer) },
  { under: ["/oauth2/register"], load: async () => at("/", (await import("./routes/oauth-register")).oauthRegister) },
  { under: ["/account/apps"], load: async () => at("/", (await import("./routes/connected-apps")).connectedAppsRoutes) },
  { under: ["/orgs"], load: async () => at("/", (await import("./routes/organizations")).organizationRoutes) },
  { under: ["/keys"], load: async () => at("/", (await import("./routes/api-keys")).apiKeys) },
  { under: ["/orgs", "/invitations"], load: async () => at("/", (await import("./routes/invitations")).invitations) },
  { under: ["/guests"], load: async () => at("/", (await import("./routes/guests")).guests) },
  // All of /admin at once: the guard of routes/admin.ts's adminApp, mounted first, covers every /admin path.
  {
    under: ["/admin"],
    load: async () => {
      const [{ adminApp }, { adminClients }, { adminOrganizations }] = await Promise.all([
        import("./routes/admin"),
        import("./routes/admin-clients"),
        import("./routes/admin-orgs"),
      ]);
      return (app) => app.route("/admin", adminApp).route("/admin", adminClients).route("/admin", adminOrganizations);
    },
  },
  // Last, as it documents every route: GET /openapi.json loads every area first.
  { under: ["/openapi.json", "/docs"], load: async () => (await import("./routes/docs")).mountDocs },
];

const mounts = new Map<Area, Mount>();
/** The app of the areas loaded so far: rebuilt (cheap: their modules are loaded once) when one is added. */
function build(): OpenAPIHono<AppEnv> {
  // Not strict: /login/ is /login, as clients expect.
  const app = new OpenAPIHono<AppEnv>({ strict: false, defaultHook: validationHook });
  app.use(everyAnswer); // request id, no-store, the optional log line
  app.use(devFaults); // local dev only: injected D1 and KV faults (off: nothing)
  // Every answer is data, never a page to render, except the docs page (routes/docs.ts).
  app.use(function headers(c, next) {
    return (c.req.path === "/docs" ? docsHeaders : apiHeaders)(c, next);
  });
  app.use(corsForBrowsers);
  // Only methods that carry a body: a GET skips the layer.
  app.on(["POST", "PUT", "PATCH", "DELETE"], "*", limitBody);
  for (const area of AREAS) mounts.get(area)?.(app);
  app.onError(onError);
  app.notFound(notFoundHandler(app.routes));
  return app;
}

/** The areas that may answer a path: Hono's own reading of it (decoded, no trailing slash). */
export const areasFor = (path: string) =>
  path === "/openapi.json" ? AREAS : AREAS.filter((a) => a.under.some((u) => path === u || path.startsWith(u === "/" ? "//" : `${u}/`)));

let app = build();
let built = new Set<Area>();
async function appFor(areas: Area[]): Promise<OpenAPIHono<AppEnv>> {
  const missing = areas.filter((a) => !built.has(a));
  if (missing.length === 0) return app;
  await Promise.all(missing.filter((a) => !mounts.has(a)).map(async (a) => mounts.set(a, await a.load())));
  // Another request may have rebuilt meanwhile: build with every area loaded by now.
  if (areas.some((a) => !built.has(a))) {
    built = new Set(mounts.keys());
    app = build();
  }
  return app;
}

/** The Worker's fetch: Hono's app.fetch, with the areas the request may need loaded first. */
export const handle = async (...[request, env, ctx]: Parameters<OpenAPIHono<AppEnv>["fetch"]>) =>
  (await appFor(areasFor(getPathNoStrict(request)))).fetch(request, env, ctx);

/** The whole app, every area loaded: for tests that list its routes or its document. */
export const wholeApp = () => appFor(AREAS);
