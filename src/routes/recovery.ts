import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { completePasswordReset, confirmEmailChange, forgotPassword, requestEmailChange, requestEmailVerification, verifyEmail } from "../auth/account";
import { deps } from "../deps";
import { sha256Base64Url } from "../encoding";
import type { AppEnv } from "../env";
import { jsonOnly } from "../middleware/json-only";
import { clientIp, ipKey } from "../middleware/client-ip";
import { enforceLimit } from "../middleware/rate-limit";
import { requireAuth } from "../middleware/require-auth";
import { emailChangeSchema, forgotSchema, linkTokenSchema, messageSchema, resetSchema } from "../schemas";
import { BEARER, body, errors, json, openApiApp } from "./openapi";

/** Flows that mail a single-use link, and the routes that complete them (the app posts the token). */

const authed = requireAuth();
const tags = ["Recovery"];

/** At most a few mails a minute per account (Bearer) or per IP and address (forgot). */
const mailBudget = createMiddleware<AppEnv>(async function mailBudget(c, next) {
  await enforceLimit(c, "MAIL_LIMITER", `user:${c.get("auth").sub}`);
  await next();
});

const verifyRequestRoute = createRoute({
  method: "post",
  path: "/email/verify/request",
  tags,
  summary: "Mail a new verification link for the account's address (a newer link replaces older ones)",
  security: BEARER,
  middleware: [authed, mailBudget],
  responses: { 202: json(messageSchema, "Mailed, if the account has an address"), ...errors(400, 401, 429) },
});

const verifyRoute = createRoute({
  method: "post",
  path: "/email/verify",
  tags,
  summary: "Complete email verification with the mailed token",
  middleware: [jsonOnly],
  request: body(linkTokenSchema),
  responses: { 200: json(messageSchema, "The address is verified"), ...errors(400, 413, 415) },
});

const forgotRoute = createRoute({
  method: "post",
  path: "/password/forgot",
  tags,
  summary: "Mail a password reset link (the same answer whether or not the address has an account)",
  middleware: [jsonOnly],
  request: body(forgotSchema),
  responses: { 202: json(messageSchema, "Mailed if the address has an account"), ...errors(400, 413, 415, 429) },
});

const resetRoute = createRoute({
  method: "post",
  path: "/password/reset",
  tags,
  summary: "Set a new password with the mailed token; every session of the account ends",
  middleware: [jsonOnly],
  request: body(resetSchema),
  responses: { 200: json(messageSchema, "The password is reset"), ...errors(400, 413, 415) },
});

const emailChangeRoute = createRoute({
  method: "post",
  path: "/email",
  tags,
  summary: "Change the address: a link goes to the new one, a notice to the old one; nothing changes until the link is used",
  security: BEARER,
  middleware: [authed, jsonOnly, mailBudget],
  request: body(emailChangeSchema),
  responses: { 202: json(messageSchema, "Mailed"), ...errors(400, 401, 409, 413, 415, 429) },
});

const emailConfirmRoute = createRoute({
  method: "post",
  path: "/email/confirm",
  tags,
  summary: "Complete an email change with the mailed token",
  middleware: [jsonOnly],
  request: body(linkTokenSchema),
  responses: { 200: json(messageSchema, "The address is changed (and verified)"), ...errors(400, 409, 413, 415) },
});

export const recovery = openApiApp()
  .openapi(verifyRequestRoute, async (c) => {
    await requestEmailVerification(deps(c), c.get("auth").sub);
    return c.json({ message: "If your account has an email address, a verification link is on its way" }, 202);
  })
  .openapi(verifyRoute, async (c) => {
    await verifyEmail(deps(c), c.req.valid("json").token);
    return c.json({ message: "Your email address is verified" }, 200);
  })
  .openapi(forgotRoute, async (c) => {
    const { email } = c.req.valid("json");
    // Per client and per address; known and unknown addresses alike.
    await enforceLimit(c, "MAIL_LIMITER", ipKey(clientIp(c)));
    // Keyed by a hash: the limiter's key lands in the log and the audit trail, an address must not.
    await enforceLimit(c, "MAIL_LIMITER", `email:${(await sha256Base64Url(email.toLowerCase())).slice(0, 22)}`);
    await forgotPassword(deps(c), email);
    return c.json({ message: "If that address has an account, a reset link is on its way" }, 202);
  })
  .openapi(resetRoute, async (c) => {
    const { token, new_password } = c.req.valid("json");
    await completePasswordReset(deps(c), token, new_password);
    return c.json({ message: "Your password is reset; sign in with the new one" }, 200);
  })
  .openapi(emailChangeRoute, async (c) => {
    const { new_email, current_password } = c.req.valid("json");
    await requestEmailChange(deps(c), c.get("auth"), new_email, current_password);
    return c.json({ message: "A confirmation link is on its way to the new address" }, 202);
  })
  .openapi(emailConfirmRoute, async (c) => {
    await confirmEmailChange(deps(c), c.req.valid("json").token);
    return c.json({ message: "Your email address is changed" }, 200);
  });
