import type { Context } from "hono";
import { getConfig } from "../config";
import { getDb, getReplicaDb } from "../db/client";
import type { Deps, MailJob } from "../deps";
import type { AppEnv } from "../env";
import { clientIp } from "../middleware/client-ip";
import { enforceLimit } from "../middleware/rate-limit";
import { replacedRefreshCookie } from "../middleware/refresh-cookie";

/** The one place a request becomes the auth flows' Deps (src/deps.ts): bindings, config, ids, limits. */

function waitUntil(c: Context<AppEnv>): Deps["defer"] {
  try {
    const ctx = c.executionCtx;
    return (task) => ctx.waitUntil(task);
  } catch {
    return undefined; // no execution context (a direct app.fetch in a test): nothing outlives the answer
  }
}

export const deps = (c: Context<AppEnv>): Deps => ({
  db: getDb(c.env.DB),
  replica: () => getReplicaDb(c.env.DB),
  kv: c.env.REVOKED,
  config: getConfig(c.env),
  requestId: c.get("requestId"),
  ip: clientIp(c),
  userAgent: c.req.header("user-agent"),
  limitAccount: (key) => enforceLimit(c, "LOGIN_USER_LIMITER", key),
  limitMail: (key) => enforceLimit(c, "MAIL_LIMITER", key),
  mailer: c.env.EMAIL,
  mailQueue: c.env.MAIL_QUEUE as Queue<MailJob>,
  defer: waitUntil(c),
});

/**
 * A sign-in's Deps: in cookie mode (whose Origin the route checked), with the refresh cookie the
 * browser sent, whose session the sign-in ends as it sets the new cookie (ASVS 7.2.4).
 */
export const signInDeps = (c: Context<AppEnv>, useCookie: boolean): Deps => ({ ...deps(c), replacing: useCookie ? replacedRefreshCookie(c) : undefined });
