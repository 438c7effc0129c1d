import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { log } from "../log";

/**
 * What every request gets, in one middleware (each layer is a cost on every request):
 * - our own id, in c.var.requestId and X-Request-Id; a client-sent X-Request-Id is ignored, so it
 *   cannot reuse another request's id in the logs and audit rows;
 * - Cache-Control: no-store, since answers carry tokens or account data, unless the route set its
 *   own policy (the JWKS);
 * - one JSON log line only with LOG_REQUESTS = "on": Workers Observability already records every
 *   invocation (method, path, status, duration, CPU). Security events are logged either way
 *   (audit.ts). The path only: query strings may carry cursors or worse.
 */
export const everyAnswer = createMiddleware<AppEnv>(async function everyAnswer(c, next) {
  const started = Date.now();
  const requestId = crypto.randomUUID();
  c.set("requestId", requestId);
  await next();
  c.header("X-Request-Id", requestId);
  if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
  // Read raw, not through getConfig: logging must not depend on the rest of the config being valid.
  if (c.env?.LOG_REQUESTS !== "on") return;
  log("request", { request_id: requestId, method: c.req.method, path: c.req.path, status: c.res.status, duration_ms: Date.now() - started });
});
