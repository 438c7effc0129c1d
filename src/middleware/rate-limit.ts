import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { audit } from "../audit";
import { getDb } from "../db/client";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { clientIp, ipKey } from "./client-ip";

export type LimiterName =
  | "LOGIN_IP_LIMITER"
  | "LOGIN_USER_LIMITER"
  | "REGISTER_IP_LIMITER"
  | "REFRESH_IP_LIMITER"
  | "MAIL_LIMITER"
  | "OAUTH_IP_LIMITER"
  | "OAUTH_SERVER_IP_LIMITER"
  | "OAUTH_REGISTER_IP_LIMITER"
  | "OAUTH_TOKEN_IP_LIMITER"
  | "API_KEY_IP_LIMITER"
  | "API_KEY_LIMITER"
  | "GUEST_IP_LIMITER";

// Every limiter in wrangler.toml counts per 60 s; a blocked client may retry after that.
const PERIOD_SECONDS = 60;

// One audit row per limiter and key per period and isolate: a flood that is being refused must not
// turn into a flood of D1 writes. Every refusal still writes its log line.
const recorded = new Map<string, number>();
function firstInPeriod(id: string, now: number): boolean {
  const last = recorded.get(id);
  if (last !== undefined && now - last < PERIOD_SECONDS * 1000) return false;
  if (recorded.size >= 10_000) recorded.clear();
  recorded.set(id, now);
  return true;
}

/**
 * Workers Rate Limiting in front of a route: 429 rate_limited with Retry-After once `key` has used
 * its budget. The binding counts per location, approximately: a brake on abuse, not an exact quota.
 */
export async function enforceLimit(c: Context<AppEnv>, name: LimiterName, key: string): Promise<void> {
  const { success } = await c.env[name].limit({ key });
  if (!success) {
    const ctx = { db: getDb(c.env.DB), requestId: c.get("requestId"), ip: clientIp(c) };
    await audit(ctx, "rate_limited", { limiter: name, key }, { store: firstInPeriod(`${name}|${key}`, Date.now()) });
    throw new ApiError("rate_limited", undefined, undefined, { "Retry-After": String(PERIOD_SECONDS) });
  }
}

/** The same as middleware, keyed by client address: it runs before the body is even read. */
export function limitByIp(name: LimiterName) {
  return createMiddleware<AppEnv>(async function limitByIp(c, next) {
    await enforceLimit(c, name, ipKey(clientIp(c)));
    await next();
  });
}
