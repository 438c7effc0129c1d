import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { log } from "../log";

/**
 * The request id goes back in X-Request-Id. One JSON line per request only with LOG_REQUESTS = "on":
 * Workers Observability already records every invocation (method, path, status, duration, CPU), and
 * the line was most of the per-request overhead. Security events are logged either way (audit.ts).
 * The path only: query strings may carry cursors or worse.
 */
export const requestLog = createMiddleware<AppEnv>(async function requestLog(c, next) {
  const started = Date.now();
  await next();
  c.header("X-Request-Id", c.get("requestId"));
  // Read raw, not through getConfig: logging must not depend on the rest of the config being valid.
  if (c.env?.LOG_REQUESTS !== "on") return;
  log("request", {
    request_id: c.get("requestId"),
    method: c.req.method,
    path: c.req.path,
    status: c.res.status,
    duration_ms: Date.now() - started,
  });
});
