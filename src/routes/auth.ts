import { Hono, type Context } from "hono";
import { login, logout, logoutAll, logoutByRefreshToken, refresh, register, type Issued } from "../auth/sessions";
import type { AppEnv } from "../config";
import { deps } from "../deps";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import { enforceLimit, limitByIp } from "../middleware/rate-limit";
import { assertAllowedOrigin, clearRefreshCookie, readRefreshCookie, setRefreshCookie } from "../middleware/refresh-cookie";
import { requireAuth } from "../middleware/require-auth";
import { validate } from "../middleware/validate";
import { loginSchema, refreshSchema, registerSchema } from "../schemas";

const authed = requireAuth();

/** In cookie mode the refresh token goes into the cookie and is left out of the JSON body. */
function sendTokens(c: Context<AppEnv>, issued: Issued & { user?: unknown }, cookieMode: boolean, status: 200 | 201 = 200) {
  const { session_expires_at, refresh_token, ...body } = issued;
  if (!cookieMode) return c.json({ ...body, refresh_token }, status);
  setRefreshCookie(c, refresh_token, session_expires_at);
  return c.json(body, status);
}

export const auth = new Hono<AppEnv>()
  .post("/register", limitByIp("REGISTER_IP_LIMITER"), jsonOnly, validate("json", registerSchema), async (c) => {
    const { use_cookie = false, ...input } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    return sendTokens(c, await register(deps(c), input), use_cookie, 201);
  })
  .post("/login", limitByIp("LOGIN_IP_LIMITER"), jsonOnly, validate("json", loginSchema), async (c) => {
    const { use_cookie = false, ...input } = c.req.valid("json");
    // Per account too, whatever IPs the guesses come from (known or unknown usernames alike).
    await enforceLimit(c, "LOGIN_USER_LIMITER", `user:${input.username.toLowerCase()}`);
    if (use_cookie) assertAllowedOrigin(c);
    return sendTokens(c, await login(deps(c), input), use_cookie);
  })
  .post("/refresh", limitByIp("REFRESH_IP_LIMITER"), jsonOnly, validate("json", refreshSchema), async (c) => {
    const fromBody = c.req.valid("json").refresh_token;
    const token = fromBody ?? readRefreshCookie(c);
    if (!token) throw new ApiError("invalid_token", "Send refresh_token in the body, or the refresh cookie");
    if (!fromBody) assertAllowedOrigin(c);
    return sendTokens(c, await refresh(deps(c), token), !fromBody);
  })
  .post(
    "/logout",
    async function logoutWithCookie(c, next) {
      // Cookie mode, no Authorization header (say the access token is gone): the cookie names the session.
      const cookie = readRefreshCookie(c);
      if (c.req.header("authorization") !== undefined || !cookie) return next();
      assertAllowedOrigin(c);
      await logoutByRefreshToken(deps(c), cookie);
      clearRefreshCookie(c);
      return c.json({ message: "Logged out" });
    },
    authed,
    async (c) => {
      await logout(deps(c), c.get("auth"));
      if (readRefreshCookie(c)) clearRefreshCookie(c);
      return c.json({ message: "Logged out" });
    },
  )
  .post("/logout/all", authed, async (c) => {
    const revoked = await logoutAll(deps(c), c.get("auth"));
    if (readRefreshCookie(c)) clearRefreshCookie(c);
    return c.json({ message: "Logged out everywhere", sessions_revoked: revoked });
  });
