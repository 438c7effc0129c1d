import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { audit } from "../audit";
import type { AppEnv } from "../config";
import { deps } from "../deps";
import { ApiError } from "../errors";

type LimiterName = "LOGIN_IP_LIMITER" | "LOGIN_USER_LIMITER" | "REGISTER_IP_LIMITER" | "REFRESH_IP_LIMITER";

// Every limiter in wrangler.toml counts per 60 s; a blocked client may retry after that.
const PERIOD_SECONDS = 60;

/** Cloudflare sets CF-Connecting-IP at the edge (a client cannot forge it); wrangler dev may not. */
export const clientIp = (c: Context) => c.req.header("cf-connecting-ip") ?? "unknown";

/**
 * Workers Rate Limiting in front of a route: 429 rate_limited with Retry-After once `key` has used
 * its budget. The binding counts per location, approximately: a brake on abuse, not an exact quota.
 */
export async function enforceLimit(c: Context<AppEnv>, name: LimiterName, key: string): Promise<void> {
  const { success } = await c.env[name].limit({ key });
  if (!success) {
    await audit(deps(c), "rate_limited", { limiter: name });
    throw new ApiError("rate_limited", undefined, undefined, { "Retry-After": String(PERIOD_SECONDS) });
  }
}

/** The same as middleware, keyed by client IP: it runs before the body is even read. */
export function limitByIp(name: LimiterName) {
  return createMiddleware<AppEnv>(async function limitByIp(c, next) {
    await enforceLimit(c, name, `ip:${clientIp(c)}`);
    await next();
  });
}
