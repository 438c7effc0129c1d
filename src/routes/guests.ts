import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { startGuest } from "../auth/guests/start";
import { upgrade } from "../auth/guests/upgrade";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import { limitByIp } from "../middleware/rate-limit";
import { assertAllowedOrigin } from "../middleware/refresh-cookie";
import { requireAuth } from "../middleware/require-auth";
import { turnstile } from "../middleware/turnstile";
import { signedInSchema } from "../response-schemas";
import { guestStartSchema, guestUpgradeSchema } from "../schemas-guests";
import { deps, signInDeps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp, setCookie } from "./openapi";
import { publicUser, tokenBody } from "./shapes";

/** Guests (docs/guests.md): starting one, and its upgrade to a member keeping the same id. */

const tags = ["Guests"];

/** GUESTS "off" (the default): the route does not exist. */
const guestsOn = createMiddleware<AppEnv>(async function guestsOn(c, next) {
  if (getConfig(c.env).GUESTS !== "on") throw new ApiError("not_found", "Guests are off on this service: sign up or sign in");
  await next();
});

const startRoute = createRoute({
  method: "post",
  path: "/guests",
  tags,
  summary: "Start a guest: an anonymous account with its own id, signed in",
  description:
    'Only while GUESTS is "on" (else 404). Per client address GUEST_IP_LIMITER (429), and Turnstile when TURNSTILE_SECRET is set (the widget\'s token in the cf-turnstile-response header). The access token carries `guest: true` and `amr: ["guest"]`; a guest is refused the members\' route groups (403 guest_not_allowed) and removed once idle for GUEST_IDLE_TTL. With `"use_cookie": true` the refresh token is set as an HttpOnly cookie, as at /login.',
  middleware: [jsonOnly, guestsOn, limitByIp("GUEST_IP_LIMITER"), turnstile("guest")] as const,
  request: body(guestStartSchema, false),
  responses: {
    201: json(signedInSchema, "A guest, signed in", setCookie),
    ...errors(...BODY_ERRORS, "not_found", "forbidden", "rate_limited", "turnstile_required", "turnstile_failed", "turnstile_unavailable"),
  },
});

const upgradeRoute = createRoute({
  method: "post",
  path: "/guests/upgrade",
  tags,
  summary: "Make the signed-in guest a member: an address and a password on the same account",
  description:
    "The guest's own session is the proof (it has nothing else). One conditional write: the account keeps its id, sessions and everything stored under it, and is no guest any more; the answer carries a new access token without `guest` (the refresh token stays; every later refresh has no `guest` either). The address is unverified and a verification link is mailed. 409 email_taken / username_taken when another account has them: nothing is written, the guest stays signed in as a guest (never merged). 409 already_member for a member, or when another upgrade won the race. Works whatever GUESTS says now.",
  security: BEARER,
  middleware: [requireAuth(), jsonOnly] as const,
  request: body(guestUpgradeSchema),
  responses: {
    200: json(signedInSchema, "A member now, with the same id"),
    ...errors(
      ...BODY_ERRORS,
      "invalid_token",
      "email_taken",
      "username_taken",
      "already_member",
      "password_too_common",
      "password_contains_context",
      "password_breached",
    ),
  },
});

export const guests = openApiApp()
  .openapi(startRoute, async (c) => {
    const { use_cookie = false } = c.req.valid("json") ?? {};
    if (use_cookie) assertAllowedOrigin(c);
    const { user, issued } = await startGuest(signInDeps(c, use_cookie));
    return c.json({ user: publicUser(user), ...tokenBody(c, issued, use_cookie) }, 201);
  })
  .openapi(upgradeRoute, async (c) => {
    const { user, issued } = await upgrade(deps(c), c.get("auth"), c.req.valid("json"));
    // No new access token only when the session ended in the same moment: sign in with the new password.
    if (!issued) throw new ApiError("invalid_token", "Upgraded; this session has ended: sign in with the new password");
    // The refresh token (JSON or cookie) stays the session's own: only the access token is new.
    return c.json({ user: publicUser(user), access_token: issued.accessToken, token_type: "Bearer" as const, expires_in: issued.expiresIn }, 200);
  });
