import { createMiddleware } from "hono/factory";
import { logEvent } from "../audit";
import { appOrigins, getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { clientIp } from "./client-ip";

/**
 * A social sign-in starts only from the app, never from another site (ASVS 7.6.2: a session is not
 * opened silently). The start is a top-level GET, so any page could send a browser there; with a
 * live session and a remembered consent at the provider the round trip would finish unseen. The
 * browser says where a navigation comes from (Sec-Fetch-Site): a `cross-site` start is refused
 * unless its Referer is a page of the app (CORS_ORIGINS, APP_URL's origin: an app on another site
 * than this API). `same-origin`, `same-site` and `none` (typed, bookmarked) pass, and so does a
 * request without the header (not a browser, or an old one: nothing to be lured). A page that
 * hides its Referer (Referrer-Policy: no-referrer) from another site is refused with the rest.
 */
export const startedByApp = createMiddleware<AppEnv>(async function startedByApp(c, next) {
  if (c.req.header("sec-fetch-site") !== "cross-site") return next();
  const config = getConfig(c.env);
  const origin = originOf(c.req.header("referer"));
  if (origin && appOrigins(config).has(origin)) return next();
  logEvent({ requestId: c.get("requestId"), ip: clientIp(c) }, "social_sign_in_failed", {
    reason: "cross_site_start",
    from: origin ?? "unknown",
  });
  throw new ApiError("forbidden", "A sign-in starts from the app's own page: this one was sent by another site. Go to the app and sign in there.");
});

function originOf(referer: string | undefined): string | undefined {
  try {
    return referer ? new URL(referer).origin : undefined;
  } catch {
    return undefined;
  }
}
