import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { CookieOptions } from "hono/utils/cookie";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";

/**
 * Cookie mode for browser SPAs: the refresh token travels in an HttpOnly cookie that script cannot
 * read, scoped to the only paths that use it. The access token stays in the app's memory.
 */

export const REFRESH_COOKIE = "refresh_token";
/**
 * The sign-in routes that set the cookie in cookie mode (/login covers /login/mfa, /passkeys/login its
 * verify): they receive the cookie they replace, so its session ends with the sign-in (ASVS 7.2.4).
 * A new sign-in route that sets the cookie adds its path here.
 */
export const SIGN_IN_PATHS = ["/login", "/register", "/passkeys/login", "/oauth/exchange", "/guests"];
// One cookie per path: /refresh rotates it, /logout (and /logout/all) revokes its session, a sign-in ends its session.
const PATHS = ["/refresh", "/logout", ...SIGN_IN_PATHS];

// http://localhost is development: drop Secure there so every browser (Safari too) keeps the cookie.
// Everywhere else, including every deployed Worker (HTTPS only), the cookie is Secure.
function isSecure(c: Context): boolean {
  const url = new URL(c.req.url);
  return !(url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname));
}

/**
 * The one place cookie attributes are decided, for setting and deleting alike: a browser ignores a
 * deletion whose attributes differ (with SameSite=None, one without Secure).
 */
function attributes(c: Context<AppEnv>, path: string, maxAge: number): CookieOptions {
  const { COOKIE_SAMESITE } = getConfig(c.env);
  return { path, httpOnly: true, secure: isSecure(c) || COOKIE_SAMESITE === "None", sameSite: COOKIE_SAMESITE, maxAge };
}

export function setRefreshCookie(c: Context<AppEnv>, token: string, expiresAt: Date): void {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
  for (const path of PATHS) setCookie(c, REFRESH_COOKIE, token, attributes(c, path, maxAge));
}

export function clearRefreshCookie(c: Context<AppEnv>): void {
  for (const path of PATHS) setCookie(c, REFRESH_COOKIE, "", attributes(c, path, 0));
}

/** Whether the request carries the cookie at all (even twice, or empty). */
export const sentRefreshCookie = (c: Context) => cookieCount(c) > 0;

const cookieCount = (c: Context) => (c.req.header("cookie") ?? "").split(";").filter((part) => part.split("=", 1)[0]!.trim() === REFRESH_COOKIE).length;

/**
 * The refresh cookie's value. Two of them means a sibling subdomain planted one (cookie tossing) and
 * the browser would send the attacker's first: refuse rather than guess which is ours.
 */
export function readRefreshCookie(c: Context<AppEnv>): string | undefined {
  if (cookieCount(c) > 1) throw new ApiError("invalid_request", "More than one refresh_token cookie was sent; clear this site's cookies and sign in again");
  return getCookie(c, REFRESH_COOKIE) || undefined;
}

/**
 * The refresh token a cookie-mode sign-in replaces: the one cookie the request carries, if exactly
 * one (two means a planted one: then neither is trusted, and the sign-in goes on as if none came).
 */
export const replacedRefreshCookie = (c: Context<AppEnv>): string | undefined => (cookieCount(c) === 1 ? getCookie(c, REFRESH_COOKIE) || undefined : undefined);

/**
 * CSRF guard for every request that sets or reads the refresh cookie: the browser-sent Origin must
 * be this API itself or one of CORS_ORIGINS. A request without Origin (not a browser) is refused.
 */
export function assertAllowedOrigin(c: Context<AppEnv>): void {
  const origin = c.req.header("origin");
  const allowed = origin !== undefined && (origin === new URL(c.req.url).origin || getConfig(c.env).CORS_ORIGINS.includes(origin));
  if (!allowed) throw new ApiError("forbidden", "Cookie requests must come from an allowed Origin");
}
