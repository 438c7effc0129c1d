import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { log } from "../log";
import { clientIp } from "./client-ip";

/**
 * Cloudflare Turnstile in front of a route anonymous callers can spend resources with (sign-up, mail
 * sign-in, forgot-password, guest creation): on only when the secret TURNSTILE_SECRET is set. The
 * widget's token travels in the `cf-turnstile-response` header and is checked server-side with
 * siteverify (TURNSTILE_VERIFY_URL) before the route runs. Missing: 400 turnstile_required; refused,
 * expired or already used: 403 turnstile_failed; siteverify down or slow: 503 turnstile_unavailable
 * with Retry-After (fails closed: the check exists to stop what a fail-open would let through).
 */

export const TURNSTILE_HEADER = "cf-turnstile-response";
const VERIFY_TIMEOUT_MS = 3_000;
// Turnstile's tokens are at most 2048 characters.
const MAX_TOKEN = 2048;

const answer = z.object({ success: z.boolean(), "error-codes": z.array(z.string()).optional(), action: z.string().optional() });

/** `action`: what the widget was rendered for; a token made for another action is refused. */
export function turnstile(action: string) {
  return createMiddleware<AppEnv>(async function turnstile(c, next) {
    const config = getConfig(c.env);
    if (!config.TURNSTILE_SECRET) return next();
    const token = c.req.header(TURNSTILE_HEADER);
    if (!token) throw new ApiError("turnstile_required");
    if (token.length > MAX_TOKEN) throw new ApiError("turnstile_failed");
    const form = new URLSearchParams({ secret: config.TURNSTILE_SECRET, response: token });
    const ip = clientIp(c);
    if (ip !== "unknown") form.set("remoteip", ip);
    let verdict: z.infer<typeof answer>;
    try {
      const res = await fetch(config.TURNSTILE_VERIFY_URL, { method: "POST", body: form, signal: AbortSignal.timeout(VERIFY_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`siteverify answered ${res.status}`);
      verdict = answer.parse(await res.json());
    } catch (err) {
      log("turnstile_unavailable", { requestId: c.get("requestId"), action, reason: err instanceof Error ? err.name : "unknown" }, "error");
      throw new ApiError("turnstile_unavailable", undefined, undefined, { "Retry-After": "5" });
    }
    if (!verdict.success || (verdict.action !== undefined && verdict.action !== action)) {
      log("turnstile_failed", { requestId: c.get("requestId"), action, codes: verdict["error-codes"] ?? [] }, "warn");
      throw new ApiError("turnstile_failed");
    }
    await next();
  });
}
