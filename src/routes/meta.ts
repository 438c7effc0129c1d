import { Hono } from "hono";
import { pingKv } from "../auth/revocations";
import { publicJwks } from "../auth/tokens";
import { getConfig } from "../config";
import { getDb, pingDb } from "../db/client";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { log } from "../log";

export const meta = new Hono<AppEnv>()
  .get("/", (c) =>
    c.json({ message: "edge-auth-api: JWT authentication on Cloudflare Workers. See the README for the API; public keys at /.well-known/jwks.json" }),
  )
  .get("/health", async (c) => {
    try {
      await Promise.all([pingDb(getDb(c.env.DB)), pingKv(c.env.REVOKED)]);
    } catch (err) {
      log("health_failed", { request_id: c.get("requestId"), message: (err as Error).message }, "error");
      throw new ApiError("service_unavailable", "D1 or KV is not reachable");
    }
    return c.json({ status: "ok" });
  })
  .get("/.well-known/jwks.json", async (c) => {
    // Public keys change only with a deploy or secret rotation; let clients cache them briefly.
    c.header("Cache-Control", "public, max-age=300");
    return c.json(await publicJwks(getConfig(c.env)));
  });
