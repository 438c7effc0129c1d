import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { log } from "../log";

/** One JSON line per request. The path only: query strings may carry cursors or worse. */
export const requestLog = createMiddleware<AppEnv>(async function requestLog(c, next) {
  const started = Date.now();
  await next();
  c.header("X-Request-Id", c.get("requestId"));
  log("request", {
    request_id: c.get("requestId"),
    method: c.req.method,
    path: c.req.path,
    status: c.res.status,
    duration_ms: Date.now() - started,
  });
});
