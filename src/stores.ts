import type { Context } from "hono";
import { getConfig } from "./config";
import { getDb } from "./db/client";
import type { AppEnv } from "./env";

/** A request's stores from its bindings, below the middleware and the routes that both use them. */

/** The stores alone, for a route that needs no config (GET /health). */
export const stores = (c: Context<AppEnv>) => ({ db: getDb(c.env.DB), kv: c.env.REVOKED });

/** What the signing keys need (auth/core/signing-keys.ts activeKeys): the token check and the JWKS. */
export const keyStores = (c: Context<AppEnv>) => ({ config: getConfig(c.env), ...stores(c) });
