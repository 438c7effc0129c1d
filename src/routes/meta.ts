import { createRoute, type z } from "@hono/zod-openapi";
import { checkStores } from "../auth/health";
import { publicJwks } from "../auth/tokens";
import { getConfig } from "../config";
import { ApiError } from "../errors";
import { log } from "../log";
import { healthSchema, jwksSchema, messageSchema } from "../response-schemas";
import { stores } from "./deps";
import { errors, json, openApiApp } from "./openapi";

const tags = ["Service"];

const rootRoute = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "What this is",
  responses: { 200: json(messageSchema, "The service's name and where its docs are") },
});

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags,
  summary: "Whether D1 and KV answer",
  responses: { 200: json(healthSchema, "Both answer"), ...errors() },
});

const jwksRoute = createRoute({
  method: "get",
  path: "/.well-known/jwks.json",
  tags,
  summary: "The public keys that verify access tokens (RFC 7517)",
  responses: { 200: json(jwksSchema, "Public JWKs, cacheable for 5 minutes") },
});

export const meta = openApiApp()
  .openapi(rootRoute, (c) =>
    c.json(
      {
        message:
          "edge-auth-api: JWT authentication on Cloudflare Workers. API reference at /docs, OpenAPI at /openapi.json, public keys at /.well-known/jwks.json",
      },
      200,
    ),
  )
  .openapi(healthRoute, async (c) => {
    try {
      await checkStores(stores(c));
    } catch (err) {
      log("health_failed", { request_id: c.get("requestId"), message: (err as Error).message }, "error");
      throw new ApiError("service_unavailable", "D1 or KV is not reachable");
    }
    return c.json({ status: "ok" as const }, 200);
  })
  .openapi(jwksRoute, async (c) => {
    // Public keys change only with a deploy or secret rotation; let clients cache them briefly.
    c.header("Cache-Control", "public, max-age=300");
    return c.json((await publicJwks(getConfig(c.env))) as z.infer<typeof jwksSchema>, 200);
  });
