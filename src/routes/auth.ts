import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { logout, logoutAll, logoutByRefreshToken } from "../auth/core/logout";
import { refresh } from "../auth/core/refresh";
import { login } from "../auth/password/login";
import { register } from "../auth/password/register";
import { completeMfaLogin } from "../auth/totp/mfa";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import { limitByIp } from "../middleware/rate-limit";
import { assertAllowedOrigin, clearRefreshCookie, readRefreshCookie, sentRefreshCookie } from "../middleware/refresh-cookie";
import { bearerClaims, requireAuth } from "../middleware/require-auth";
import { turnstile } from "../middleware/turnstile";
import { messageSchema, mfaChallengeSchema, revokedCountSchema, signedInSchema, tokensSchema } from "../response-schemas";
import { registeredSchema, registeredUnverifiedSchema } from "../response-schemas-passwords";
import { freshCheckSchema, loginMfaSchema, loginSchema, refreshSchema, registerSchema } from "../schemas";
import { deps, signInDeps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, errorsDuringEnrolment, json, openApiApp, REFRESH_COOKIE_AUTH, setCookie } from "./openapi";
import { mfaChallengeBody, publicUser, tokenBody } from "./shapes";
import { asked, sensitive } from "./step-up";

const authed = requireAuth();
// REQUIRE_MFA: a session that must enrol a second factor may still end itself.
const enrolling = requireAuth({ duringEnrolment: true });
const tags = ["Sign-in"];

const registrationOpen = createMiddleware<AppEnv>(async function registrationOpen(c, next) {
  if (getConfig(c.env).REGISTRATION === "closed") throw new ApiError("registration_closed");
  await next();
});

const registerRoute = createRoute({
  method: "post",
  path: "/register",
  tags,
  summary: "Create an account and sign in",
  // Turnstile after the cheap refusals, before the body is read: a bot spends no siteverify on a closed or rate-limited sign-up.
  middleware: [registrationOpen, limitByIp("REGISTER_IP_LIMITER"), turnstile("sign_up"), jsonOnly] as const,
  request: body(registerSchema),
  responses: {
    201: json(
      registeredSchema.or(registeredUnverifiedSchema),
      "Signed up and in (only the user while REQUIRE_VERIFIED_EMAIL is on: verify, then sign in)",
      setCookie,
    ),
    ...errors(
      ...BODY_ERRORS,
      "registration_closed",
      "forbidden",
      "username_taken",
      "email_taken",
      "password_too_common",
      "password_contains_context",
      "password_breached",
      "turnstile_required",
      "turnstile_failed",
      "turnstile_unavailable",
      "rate_limited",
    ),
  },
  description:
    'Starts a session. With `"use_cookie": true` (browser apps) the refresh token is set as an HttpOnly cookie instead of returned. 403 registration_closed when REGISTRATION is "closed". The password: 8-128 characters, no composition rules; refused when common (password_too_common), when it contains the username, the address or the service\'s words (password_contains_context), or when breached (password_breached, or only `password_warning` with PWNED_PASSWORDS "warn"). With TURNSTILE_SECRET set, the widget\'s token in the `cf-turnstile-response` header (action sign_up).',
});

const loginRoute = createRoute({
  method: "post",
  path: "/login",
  tags,
  summary: "Sign in with a username (or email) and password",
  middleware: [limitByIp("LOGIN_IP_LIMITER"), jsonOnly] as const,
  request: body(loginSchema),
  responses: {
    200: json(signedInSchema.or(mfaChallengeSchema), "Signed in, or (TOTP on) the challenge for POST /login/mfa", setCookie),
    ...errors(...BODY_ERRORS, "invalid_credentials", "account_disabled", "email_unverified", "forbidden", "rate_limited"),
  },
  description:
    'With TOTP on, a right password answers `{"mfa_required": true, "challenge", ...}` instead of tokens: send the challenge with a code to POST /login/mfa. The failure count of the account lock is cleared only when that step succeeds.',
});

const loginMfaRoute = createRoute({
  method: "post",
  path: "/login/mfa",
  tags,
  summary: "Complete a sign-in with a TOTP code or a recovery code",
  description:
    "The challenge comes from POST /login, single use, valid for CHALLENGE_TTL seconds. A code is accepted once, within ±30 s of clock skew. A wrong code counts toward the account lock like a wrong password (429 while locked); five wrong codes end the challenge (sign in again).",
  middleware: [limitByIp("LOGIN_IP_LIMITER"), jsonOnly] as const,
  request: body(loginMfaSchema),
  responses: {
    200: json(signedInSchema, "Signed in", setCookie),
    ...errors(...BODY_ERRORS, "invalid_mfa_code", "invalid_challenge", "account_disabled", "email_unverified", "forbidden", "rate_limited"),
  },
});

const refreshRoute = createRoute({
  method: "post",
  path: "/refresh",
  tags,
  summary: "Swap a refresh token for new tokens",
  description:
    "The old refresh token is dead afterwards. The same client sending it again within 10 s (a lost answer, a second tab) gets the same new one. Any other replay ends the session. Cookie mode: send no body, or {if_signed_in: true} after a page load (204 when there is no cookie); the request needs an allowed Origin.",
  security: [...REFRESH_COOKIE_AUTH, {}],
  middleware: [limitByIp("REFRESH_IP_LIMITER"), jsonOnly] as const,
  request: body(refreshSchema, false),
  responses: {
    200: json(tokensSchema, "New tokens", setCookie),
    204: { description: "No refresh token came, and the body asked if_signed_in: nobody is signed in on this browser" },
    ...errorsDuringEnrolment(...BODY_ERRORS, "invalid_token", "forbidden", "rate_limited"),
  },
});

/** Cookie mode: the cookie names the session, whether or not a (maybe expired) access token came too. */
const logoutWithCookie = createMiddleware<AppEnv>(async function logoutWithCookie(c, next) {
  if (!sentRefreshCookie(c)) return next();
  assertAllowedOrigin(c);
  // A valid access token names its session whatever the cookies say: two cookies (one planted by a
  // sibling subdomain) then do not keep a Bearer logout from ending it.
  const claims = await bearerClaims(c);
  let cookie: string | undefined;
  try {
    cookie = readRefreshCookie(c);
  } catch (err) {
    if (!claims) throw err;
  }
  // A dead or rotated cookie means the session is over already; script cannot delete an
  // HttpOnly cookie, so clear it here and answer as for any logout.
  if (cookie) await logoutByRefreshToken(deps(c), cookie);
  if (claims) await logout(deps(c), claims);
  clearRefreshCookie(c);
  return c.json({ message: "Logged out" });
});

const logoutRoute = createRoute({
  method: "post",
  path: "/logout",
  tags,
  summary: "End this session",
  description:
    "With a Bearer token, or in cookie mode with the refresh cookie alone (then the request needs an allowed Origin, and a dead cookie is simply cleared). A 503 means: send it again to complete the revocation.",
  security: [...BEARER, ...REFRESH_COOKIE_AUTH],
  middleware: [logoutWithCookie, enrolling] as const,
  responses: {
    200: json(messageSchema, "Logged out", setCookie),
    ...errorsDuringEnrolment("invalid_request", "invalid_token", "forbidden", "payload_too_large"),
  },
});

const logoutAllRoute = sensitive(
  "end_sessions",
  createRoute({
    method: "post",
    path: "/logout/all",
    tags,
    summary: "End every session of the user",
    description:
      "The step-up end_sessions: `current_password` (an account without one: a sign-in within STEP_UP_MAX_AGE), and while TOTP is on a code or a recovery code. Wrong ones count against this session's own budget, never the account lock. A 503 means: send it again.",
    security: BEARER,
    middleware: [authed, jsonOnly] as const,
    request: body(freshCheckSchema, false),
    responses: {
      200: json(revokedCountSchema, "Every session ended", setCookie),
      ...errors(...BODY_ERRORS, "invalid_token", "invalid_credentials", "invalid_mfa_code", "reauthentication_required", "rate_limited"),
    },
  }),
);

export const auth = openApiApp()
  .openapi(registerRoute, async (c) => {
    const { use_cookie = false, ...input } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    // With REQUIRE_VERIFIED_EMAIL on, the account gets no session (no tokens) until it is verified.
    const { user, issued, warning } = await register(signInDeps(c, use_cookie), input);
    return c.json({ user: publicUser(user), ...(issued ? tokenBody(c, issued, use_cookie) : {}), ...(warning ? { password_warning: warning } : {}) }, 201);
  })
  .openapi(loginRoute, async (c) => {
    const { use_cookie = false, ...input } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    // The per-account limit runs inside login(), once the account is known: username and email share it.
    const result = await login(signInDeps(c, use_cookie), input);
    if ("challenge" in result) return c.json(mfaChallengeBody(result.challenge), 200);
    return c.json({ user: publicUser(result.user), ...tokenBody(c, result.issued, use_cookie) }, 200);
  })
  .openapi(loginMfaRoute, async (c) => {
    const { challenge, use_cookie = false, ...offered } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    const { user, issued } = await completeMfaLogin(signInDeps(c, use_cookie), challenge, offered);
    return c.json({ user: publicUser(user), ...tokenBody(c, issued, use_cookie) }, 200);
  })
  .openapi(refreshRoute, async (c) => {
    const { refresh_token: fromBody, if_signed_in } = c.req.valid("json");
    const token = fromBody ?? readRefreshCookie(c);
    if (!token && if_signed_in) return c.body(null, 204);
    if (!token)
      throw new ApiError(
        "invalid_token",
        "No refresh token was sent: neither refresh_token in the JSON body nor the refresh cookie. Sign in again (a signed-out browser has no cookie)",
      );
    if (!fromBody) assertAllowedOrigin(c);
    return c.json(tokenBody(c, await refresh(deps(c), token), !fromBody), 200);
  })
  .openapi(logoutRoute, async (c) => {
    await logout(deps(c), c.get("auth"));
    return c.json({ message: "Logged out" }, 200);
  })
  .openapi(logoutAllRoute, async (c) => {
    const revoked = await logoutAll(deps(c), asked(c, logoutAllRoute), c.req.valid("json") ?? {});
    if (sentRefreshCookie(c)) clearRefreshCookie(c);
    return c.json({ message: "Logged out everywhere", sessions_revoked: revoked }, 200);
  });
