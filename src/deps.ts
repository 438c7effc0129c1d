import type { Context } from "hono";
import type { Deps } from "./auth/sessions";
import { getConfig, type AppEnv } from "./config";
import { getDb } from "./db/client";
import { clientIp } from "./middleware/rate-limit";

/** What the auth flows need from a request: db client, KV, parsed config, and request id and IP for the audit trail. */
export const deps = (c: Context<AppEnv>): Deps => ({
  db: getDb(c.env.DB),
  kv: c.env.REVOKED,
  config: getConfig(c.env),
  requestId: c.get("requestId"),
  ip: clientIp(c),
  userAgent: c.req.header("user-agent"),
});
