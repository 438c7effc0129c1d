import type { Context } from "hono";
import type { Deps } from "./auth/sessions";
import { getConfig, type AppEnv } from "./config";
import { getDb } from "./db/client";

/** What the auth flows need from a request: db client, KV, parsed config and the request id for logs. */
export const deps = (c: Context<AppEnv>): Deps => ({
  db: getDb(c.env.DB),
  kv: c.env.REVOKED,
  config: getConfig(c.env),
  requestId: c.get("requestId"),
});
