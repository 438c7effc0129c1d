import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { NONCE, secureHeaders } from "hono/secure-headers";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { json } from "./openapi";

/**
 * GET /openapi.json: the OpenAPI 3.1 document, generated from the routes' zod schemas (never written
 * by hand). GET /docs: Scalar's interactive reference for it, when API_DOCS is "on" (off in production by default).
 */

const tags = ["Service"];
// One pinned file, checked by Subresource Integrity, is the only script the page may run besides its
// own nonced config: a new Scalar release cannot reach this origin (and its cookies) unreviewed.
// To upgrade: take the new version's dist/browser/standalone.js from npm and hash it
// (openssl dgst -sha384 -binary standalone.js | openssl base64 -A).
const SCALAR_BUNDLE = "https://cdn.jsdelivr.net/npm/@scalar/api-reference@1.72.1/dist/browser/standalone.js";
const SCALAR_SRI = "sha384-U11tb2XnKvmwt8RlTvnwUnYgrN+ur4Xyh9htLhjajWNR/Oyl5AX5DEz00qRmlrmK";
const SCALAR_FONTS = "https://fonts.scalar.com";

const documentRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  tags,
  summary: "This API's OpenAPI 3.1 document",
  responses: { 200: json(z.record(z.string(), z.unknown()).openapi("OpenAPIDocument"), "The document") },
});

const docsRoute = createRoute({
  method: "get",
  path: "/docs",
  tags,
  summary: "Interactive API reference (HTML), unless API_DOCS is off",
  responses: {
    200: { description: "The reference page", content: { "text/html": { schema: z.string() } } },
    404: json(z.object({ error: z.string(), message: z.string() }), "API_DOCS is off"),
  },
});

/**
 * The security headers of the docs page, the only page with a script: its own CSP allows the Scalar
 * bundle (with a nonce), its styles and fonts, and calls to this API; the API keeps default-src 'none'.
 */
export const docsHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: [NONCE, SCALAR_BUNDLE],
    styleSrc: ["'unsafe-inline'", SCALAR_FONTS],
    fontSrc: [SCALAR_FONTS],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
  },
  strictTransportSecurity: "max-age=31536000; includeSubDomains",
});

let cached: object | undefined;
/** Built once per isolate: the routes do not change while it lives. */
function document(app: OpenAPIHono<AppEnv>) {
  cached ??= app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "edge-auth-api",
      version: "1.0.0",
      description:
        "Authentication API on Cloudflare Workers: short-lived ES256 access tokens, rotating refresh tokens (JSON or an HttpOnly cookie), sessions, roles. Every error has the shape of the Error schema.",
    },
  });
  return cached;
}

export function mountDocs(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "The access token",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "refreshCookie", {
    type: "apiKey",
    in: "cookie",
    name: "refresh_token",
    description: "Cookie mode: the HttpOnly refresh cookie, sent by the browser to /refresh and /logout only",
  });
  // The configured issuer, never the Host header a client sent.
  app.openapi(documentRoute, (c) => c.json({ ...document(app), servers: [{ url: getConfig(c.env).ISSUER }] } as Record<string, unknown>, 200));
  app.openapi(docsRoute, async (c) => {
    if (getConfig(c.env).API_DOCS === "off") throw new ApiError("not_found", "No such route");
    const page = Scalar<AppEnv>({ url: "/openapi.json", pageTitle: "edge-auth-api", cdn: SCALAR_BUNDLE, nonce: c.get("secureHeadersNonce") });
    const html = await ((await page(c, async () => {})) as Response).text();
    // Scalar writes the script tag; the integrity check is added to it here.
    return c.html(html.replace(`src="${SCALAR_BUNDLE}"`, `src="${SCALAR_BUNDLE}" integrity="${SCALAR_SRI}" crossorigin="anonymous"`), 200);
  });
}
