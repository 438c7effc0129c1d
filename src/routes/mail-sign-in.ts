import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { signInWithCode, signInWithLink } from "../auth/mail-sign-in/consume";
import { startMailSignIn } from "../auth/mail-sign-in/messages";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { clientIp, ipKey } from "../middleware/client-ip";
import { jsonOnly } from "../middleware/json-only";
import { enforceLimit, limitByIp } from "../middleware/rate-limit";
import { assertAllowedOrigin } from "../middleware/refresh-cookie";
import { turnstile } from "../middleware/turnstile";
import { messageSchema, mfaChallengeSchema, signedInSchema } from "../response-schemas";
import { mailSignInCodeSchema, mailSignInLinkSchema, mailSignInStartSchema } from "../schemas-mail";
import { deps, signInDeps } from "./deps";
import { BODY_ERRORS, body, errors, json, openApiApp, setCookie } from "./openapi";
import { mfaChallengeBody, publicUser, tokenBody } from "./shapes";

/**
 * Sign-in (and sign-up) by mail: one message with a link and a code (docs/mail-sign-in.md). Only
 * POSTs use a message: the link opens the app's page, whose button posts its token, so a scanner that
 * fetches the link (GET, HEAD) spends nothing.
 */

const tags = ["Sign-in"];

/** MAIL_SIGN_IN "off": the routes do not exist. */
const mailSignInOn = createMiddleware<AppEnv>(async function mailSignInOn(c, next) {
  if (getConfig(c.env).MAIL_SIGN_IN === "off") throw new ApiError("not_found", "No such route");
  await next();
});

const ANSWERED = "If that address can sign in or sign up here, a mail with a link and a code is on its way";

const startRoute = createRoute({
  method: "post",
  path: "/login/email",
  tags,
  summary: "Mail a sign-in link and code (the same answer, work and time whatever the address)",
  description:
    'Answered before any lookup: the request is queued, the same for every address. An address with an account gets a sign-in mail; an address without one gets a sign-up mail while REGISTRATION is "open", and nothing while it is closed; a disabled account gets nothing. The mail\'s link (APP_URL#mail-sign-in=<token>) and its 8-digit code work once, within MAIL_SIGN_IN_TTL, and only until a newer mail to the address. At most MAIL_RECIPIENT_DAILY such mails go to one address in 24 hours (the answer does not change). Turnstile (header `cf-turnstile-response`) when TURNSTILE_SECRET is set. 404 while MAIL_SIGN_IN is "off".',
  middleware: [mailSignInOn, turnstile("mail_sign_in"), jsonOnly] as const,
  request: body(mailSignInStartSchema),
  responses: {
    202: json(messageSchema, "Queued; mailed if the address can sign in or sign up"),
    ...errors(...BODY_ERRORS, "not_found", "rate_limited", "service_unavailable", "turnstile_required", "turnstile_failed", "turnstile_unavailable"),
  },
});

const SIGNED_IN =
  'Signed in (amr ["email"]), or with TOTP on the challenge for POST /login/mfa (then amr ["email","otp","mfa"]); a sign-up mail creates the account first (no username, no password, its address verified). With `"use_cookie": true` the refresh token is set as an HttpOnly cookie. An account whose address was never confirmed is handed to the mailbox: its password, passkeys, linked providers that do not vouch for the address, API keys and sessions end (docs/security.md).';

const linkRoute = createRoute({
  method: "post",
  path: "/login/email/link",
  tags,
  summary: "Sign in with the token of a mailed sign-in link (posted by the app's page, never on load)",
  description: `${SIGNED_IN} 400 invalid_link when the link is used, replaced by a newer mail, expired or unknown.`,
  middleware: [mailSignInOn, limitByIp("LOGIN_IP_LIMITER"), jsonOnly] as const,
  request: body(mailSignInLinkSchema),
  responses: {
    200: json(signedInSchema.or(mfaChallengeSchema), "Signed in, or (TOTP on) the challenge for POST /login/mfa", setCookie),
    ...errors(
      ...BODY_ERRORS,
      "not_found",
      "invalid_link",
      "account_disabled",
      "email_unverified",
      "email_taken",
      "registration_closed",
      "forbidden",
      "rate_limited",
    ),
  },
});

const codeRoute = createRoute({
  method: "post",
  path: "/login/email/code",
  tags,
  summary: "Sign in with the address and the 8-digit code of its newest sign-in mail, from any device",
  description: `${SIGNED_IN} 401 invalid_mail_code, the same for a wrong, expired, used or earlier message's code; a wrong code spends one of the message's MAIL_CODE_ATTEMPTS, and the last one ends it.`,
  middleware: [mailSignInOn, limitByIp("LOGIN_IP_LIMITER"), jsonOnly] as const,
  request: body(mailSignInCodeSchema),
  responses: {
    200: json(signedInSchema.or(mfaChallengeSchema), "Signed in, or (TOTP on) the challenge for POST /login/mfa", setCookie),
    ...errors(
      ...BODY_ERRORS,
      "not_found",
      "invalid_mail_code",
      "account_disabled",
      "email_unverified",
      "email_taken",
      "registration_closed",
      "forbidden",
      "rate_limited",
    ),
  },
});

export const mailSignIn = openApiApp()
  .openapi(startRoute, async (c) => {
    const { email } = c.req.valid("json");
    // Per client at the edge; per address by the daily mail budget (auth/mail/budget.ts), in the queue's consumer.
    await enforceLimit(c, "MAIL_LIMITER", ipKey(clientIp(c)));
    await startMailSignIn(deps(c), email);
    return c.json({ message: ANSWERED }, 202);
  })
  .openapi(linkRoute, async (c) => {
    const { token, use_cookie = false } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    const result = await signInWithLink(signInDeps(c, use_cookie), token);
    if ("challenge" in result) return c.json(mfaChallengeBody(result.challenge), 200);
    return c.json({ user: publicUser(result.user), ...tokenBody(c, result.issued, use_cookie) }, 200);
  })
  .openapi(codeRoute, async (c) => {
    const { email, code, use_cookie = false } = c.req.valid("json");
    if (use_cookie) assertAllowedOrigin(c);
    const result = await signInWithCode(signInDeps(c, use_cookie), email, code);
    if ("challenge" in result) return c.json(mfaChallengeBody(result.challenge), 200);
    return c.json({ user: publicUser(result.user), ...tokenBody(c, result.issued, use_cookie) }, 200);
  });
