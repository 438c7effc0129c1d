import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { getConfig, type AppEnv } from "../config";
import { ApiError } from "../errors";

/**
 * Cookie mode for browser SPAs: the refresh token travels in an HttpOnly cookie that script cannot
 * read, scoped to the only paths that use it. The access token stays in the app's memory.
 */

export const REFRESH_COOKIE = "refresh_token";
// One cookie per path: /refresh rotates it, /logout (and /logout/all) revokes its session.
const PATHS = ["/refresh", "/logout"];

// http://localhost is development: drop Secure there so every browser (Safari too) keeps the cookie.
// Everywhere else, including every deployed Worker (HTTPS only), the cookie is Secure.
function isSecure(c: Context): boolean {
  const url = new URL(c.req.url);
  return !(url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname));
}

export function setRefreshCookie(c: Context<AppEnv>, token: string, expiresAt: Date): void {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
  const { COOKIE_SAMESITE } = getConfig(c.env);
  for (const path of PATHS) {
    setCookie(c, REFRESH_COOKIE, token, { path, httpOnly: true, secure: isSecure(c) || COOKIE_SAMESITE === "None", sameSite: COOKIE_SAMESITE, maxAge });
  }
}

export function clearRefreshCookie(c: Context<AppEnv>): void {
  for (const path of PATHS) deleteCookie(c, REFRESH_COOKIE, { path, httpOnly: true, secure: isSecure(c) });
}

export function readRefreshCookie(c: Context<AppEnv>): string | undefined {
  return getCookie(c, REFRESH_COOKIE) || undefined;
}

/**
 * CSRF guard for every request that sets or reads the refresh cookie: the browser-sent Origin must
 * be this API itself or one of CORS_ORIGINS. A request without Origin (not a browser) is refused.
 */
export function assertAllowedOrigin(c: Context<AppEnv>): void {
  const origin = c.req.header("origin");
  const allowed = origin !== undefined && (origin === new URL(c.req.url).origin || getConfig(c.env).CORS_ORIGINS.includes(origin));
  if (!allowed) throw new ApiError("forbidden", "Cookie requests must come from an allowed Origin");
}
