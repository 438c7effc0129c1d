import { Hono } from "hono";
import { login, logout, logoutAll, logoutByRefreshToken, refresh, register } from "../auth/sessions";
import { deps } from "../deps";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import { limitByIp } from "../middleware/rate-limit";
import { assertAllowedOrigin, clearRefreshCookie, readRefreshCookie, sentRefreshCookie } from "../middleware/refresh-cookie";
import { bearerClaims, requireAuth } from "../middleware/require-auth";
import { validate } from "../middleware/validate";
import { loginSchema, refreshSchema, registerSchema } from "../schemas";
import { sendTokens } from "./shapes";

const authed = requireAuth();

export const auth = new Hono<AppEnv>()
  .post("/register", limitByIp("REGISTER_IP_LIMITER"), jsonOnly, validate("json", registerSchema), async (c) => {
    const { use_cookie = false, ...input } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    const { user, issued } = await register(deps(c), input);
    return sendTokens(c, issued, { cookie: use_cookie, user, status: 201 });
  })
  .post("/login", limitByIp("LOGIN_IP_LIMITER"), jsonOnly, validate("json", loginSchema), async (c) => {
    const { use_cookie = false, ...input } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    // The per-account limit runs inside login(), once the account is known: username and email share it.
    const { user, issued } = await login(deps(c), input);
    return sendTokens(c, issued, { cookie: use_cookie, user });
  })
  .post("/refresh", limitByIp("REFRESH_IP_LIMITER"), jsonOnly, validate("json", refreshSchema), async (c) => {
    const fromBody = c.req.valid("json").refresh_token;
    const token = fromBody ?? readRefreshCookie(c);
    if (!token) throw new ApiError("invalid_token", "Send refresh_token in the body, or the refresh cookie");
    if (!fromBody) assertAllowedOrigin(c);
    return sendTokens(c, await refresh(deps(c), token), { cookie: !fromBody });
  })
  .post(
    "/logout",
    async function logoutWithCookie(c, next) {
      // Cookie mode: the cookie names the session, whether or not a (maybe expired) access token came too.
      if (!sentRefreshCookie(c)) return next();
      assertAllowedOrigin(c);
      const cookie = readRefreshCookie(c);
      // A dead or rotated cookie means the session is over already; script cannot delete an
      // HttpOnly cookie, so clear it here and answer as for any logout.
      if (cookie) await logoutByRefreshToken(deps(c), cookie);
      // A valid access token of another session (an odd client) is logged out too.
      const claims = await bearerClaims(c);
      if (claims) await logout(deps(c), claims);
      clearRefreshCookie(c);
      return c.json({ message: "Logged out" });
    },
    authed,
    async (c) => {
      await logout(deps(c), c.get("auth"));
      return c.json({ message: "Logged out" });
    },
  )
  .post("/logout/all", authed, async (c) => {
    const revoked = await logoutAll(deps(c), c.get("auth"));
    if (sentRefreshCookie(c)) clearRefreshCookie(c);
    return c.json({ message: "Logged out everywhere", sessions_revoked: revoked });
  });
