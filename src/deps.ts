import type { Context } from "hono";
import type { AuditContext } from "./audit";
import { getConfig, type Config } from "./config";
import { getDb, getReplicaDb, type Db } from "./db/client";
import type { AppEnv } from "./env";
import { clientIp } from "./middleware/client-ip";
import { enforceLimit } from "./middleware/rate-limit";
import { log } from "./log";

/** What the auth flows need from a request. They know nothing of HTTP; this is built per request by the routes. */
export interface Deps extends AuditContext {
  db: Db;
  /** A client for reads that may lag a moment (db/client.ts getReplicaDb), made when called. */
  replica: () => Db;
  kv: KVNamespace;
  config: Config;
  userAgent?: string;
  /** The per-account login budget at the edge; throws 429 when `key` has used it. Absent in unit tests. */
  limitAccount?: (key: string) => Promise<void>;
  /** The mail budget at the edge (per account, or per client), the same way. */
  limitMail?: (key: string) => Promise<void>;
  /** Cloudflare Email Service (src/mail.ts is the only user). */
  mailer?: SendEmail;
  /** Keeps a task running after the answer (waitUntil), where the request has an execution context. */
  defer?: (task: Promise<unknown>) => void;
}

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
  defer: waitUntil(c),
});

/**
 * Runs `task` after the answer where the request has an execution context (and before it where it
 * has none): work whose time or outcome must not show in the answer. A failure is logged by name only.
 */
export async function afterAnswer(deps: Deps, what: string, task: () => Promise<void>): Promise<void> {
  const run = task().catch((err: Error) => log("deferred_failed", { request_id: deps.requestId, what, error: err.name }, "error"));
  if (deps.defer) deps.defer(run);
  else await run;
}
