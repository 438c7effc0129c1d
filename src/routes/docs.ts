import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { log } from "../log";
import { withGuestRefusals } from "./members-only-doc";
import { json } from "./openapi";

/**
 * GET /openapi.json: the OpenAPI 3.1 document, generated from the routes' zod schemas (never written
 * by hand). GET /docs: Scalar's interactive reference for it, when API_DOCS is "on" (off in production by default),
 * with its script from this origin (GET /docs/scalar-api-reference-<version>.js, a static asset).
 */

const tags = ["Service"];
// The reference's script: @scalar/api-reference's single-file build, from npm at the exact version
// package-lock.json records, copied into the Worker's static assets by scripts/assets.mjs (4 MiB: far
// too big for the bundle) and served from this origin, so /docs works offline and runs no third
// party's script. Subresource Integrity pins the file too: test/node/docs-assets.test.ts fails when
// the installed package no longer matches. To upgrade: `npm install -E -D @scalar/api-reference@<v>`,
// then set the version and the hash (openssl dgst -sha384 -binary <standalone.js> | openssl base64 -A).
export const SCALAR_VERSION = "1.72.1";
export const SCALAR_SRI = "sha384-U11tb2XnKvmwt8RlTvnwUnYgrN+ur4Xyh9htLhjajWNR/Oyl5AX5DEz00qRmlrmK";
export const SCALAR_PATH = `/docs/scalar-api-reference-${SCALAR_VERSION}.js`;

const documentRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  tags,
  summary: "This API's OpenAPI 3.1 document",
  responses: { 200: json(z.record(z.string(), z.unknown()).openapi("OpenAPIDocument"), "The document") },
});

const scriptRoute = createRoute({
  method: "get",
  path: SCALAR_PATH,
  tags,
  summary: "The reference page's script (Scalar, pinned), unless API_DOCS is off",
  responses: {
    200: { description: "The script, cacheable for a year (its path names its version)", content: { "text/javascript": { schema: z.string() } } },
    404: json(z.object({ error: z.string(), message: z.string() }), "API_DOCS is off"),
  },
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

let cached: object | undefined;
/** Built once per isolate: the routes do not change while it lives. */
function document(app: OpenAPIHono<AppEnv>) {
  cached ??= withGuestRefusals(
    app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "edge-auth-api",
        version: "1.0.0",
        description:
          "Authentication API on Cloudflare Workers: short-lived ES256 access tokens, rotating refresh tokens (JSON or an HttpOnly cookie), sessions, roles. Every error has the shape of the Error schema.",
      },
    }),
  );
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
    const page = Scalar<AppEnv>({
      url: "/openapi.json",
      pageTitle: "edge-auth-api",
      cdn: SCALAR_PATH,
      nonce: c.get("secureHeadersNonce"),
      // Nothing to or from Scalar's servers: no web fonts, telemetry, developer toolbar, AI chat or MCP
      // generator (the last two send the document to them).
      withDefaultFonts: false,
      telemetry: false,
      showDeveloperTools: "never",
      agent: { disabled: true },
      mcp: { disabled: true },
    });
    const html = await ((await page(c, async () => {})) as Response).text();
    // Scalar writes the script tag; the integrity check is added to it here.
    return c.html(html.replace(`src="${SCALAR_PATH}"`, `src="${SCALAR_PATH}" integrity="${SCALAR_SRI}"`), 200);
  });
  app.openapi(scriptRoute, async (c) => {
    if (getConfig(c.env).API_DOCS === "off") throw new ApiError("not_found", "No such route");
    const asset = await c.env.ASSETS.fetch(new URL(SCALAR_PATH, c.req.url));
    // Missing only when .assets/ was not built (scripts/assets.mjs): say so in the log, answer 404.
    if (!asset.ok) {
      log("docs_script_missing", { path: SCALAR_PATH, status: asset.status, fix: "node scripts/assets.mjs, then restart" }, "error");
      throw new ApiError("not_found", "No such route");
    }
    const headers = { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=31536000, immutable" };
    return new Response(asset.body, { status: 200, headers });
  });
}
