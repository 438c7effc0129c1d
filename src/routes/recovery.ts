import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { confirmEmailChange, requestEmailChange } from "../auth/account/account";
import type { AccessClaims } from "../auth/core/tokens";
import { requestEmailVerificationByAddress, requestOwnVerification, verifyEmail } from "../auth/mail/verification";
import { completePasswordReset, forgotPassword, revokeWayIn } from "../auth/mailbox/reclaim";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { clientIp, ipKey } from "../middleware/client-ip";
import { jsonOnly } from "../middleware/json-only";
import { enforceLimit } from "../middleware/rate-limit";
import { requireAuth } from "../middleware/require-auth";
import { turnstile } from "../middleware/turnstile";
import { messageSchema, revokedWayInSchema } from "../response-schemas";
import { resetDoneSchema } from "../response-schemas-passwords";
import { addressProofSchema, emailChangeSchema, forgotSchema, linkTokenSchema, resetSchema, verifyRequestSchema } from "../schemas";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp } from "./openapi";
import { asked, sensitive } from "./step-up";

/**
 * Flows that mail a single-use link, and the routes that complete them (the app posts the token).
 * Mail budgets are spent only after the body is valid: per account (Bearer) or per client, at the
 * edge; per recipient, by the link limits (auth/mail/links.ts) and the daily count (auth/mail/budget.ts) in D1.
 */

const authed = requireAuth();
const tags = ["Recovery"];

/** A Bearer token is checked when one is sent; without one the route asks for an address instead. */
const authIfSent = createMiddleware<AppEnv>(async function authIfSent(c, next) {
  if (c.req.header("authorization") === undefined) return next();
  return authed(c, next);
});

const verifyRequestRoute = createRoute({
  method: "post",
  path: "/email/verify/request",
  tags,
  summary: "Mail a new verification link: for the signed-in account, or (without a token) to an address",
  description:
    "With a Bearer token: the account's own address. Without one, send `email`: the same 202 whether or not an account has that address (an account that cannot sign in before verifying is never stuck). At most three links are live per account; a newer request then mails nothing, and any of the three works. At most MAIL_RECIPIENT_DAILY verification mails go to one address in 24 hours (the answer does not change).",
  security: [...BEARER, {}],
  middleware: [authIfSent, jsonOnly],
  request: body(verifyRequestSchema, false),
  responses: {
    202: json(messageSchema, "Mailed, if there is an unverified address"),
    ...errors(...BODY_ERRORS, "invalid_token", "rate_limited", "service_unavailable"),
  },
});

/** Links that prove an address for an account take a proof that the one following them holds it (auth/account/account.ts). */
const HOLDER =
  "With a Bearer token of the account the link is for, or the account's `password` (wrong ones count toward the account lock, like a login's): the link proves the mailbox, not who made the account. Without either, 401 account_proof_required: someone whose address another person registered should reset that account's password instead, which hands it over and ends everything its creator set up.";

const verifyRoute = createRoute({
  method: "post",
  path: "/email/verify",
  tags,
  summary: "Complete email verification with the mailed token, as the account's holder",
  description: HOLDER,
  security: [...BEARER, {}],
  middleware: [authIfSent, jsonOnly],
  request: body(addressProofSchema),
  responses: {
    200: json(messageSchema, "The address is verified"),
    ...errors(...BODY_ERRORS, "invalid_link", "account_proof_required", "invalid_credentials", "invalid_token", "rate_limited"),
  },
});

const forgotRoute = createRoute({
  method: "post",
  path: "/password/forgot",
  tags,
  summary: "Mail a password reset link (the same answer, work and time whether or not the address has an account)",
  description:
    "Answered before any lookup: the request is queued, the same for every address, and the link is made and mailed by the queue's consumer (a mail the Email Service refuses is tried again for about 15 minutes). A 503 means: send it again. At most three reset links are live per account: a newer request then mails nothing, and any of the three works. At most MAIL_RECIPIENT_DAILY reset mails go to one address in 24 hours (the answer does not change). With TURNSTILE_SECRET set, the widget's token in the `cf-turnstile-response` header (action forgot_password).",
  middleware: [turnstile("forgot_password"), jsonOnly],
  request: body(forgotSchema),
  responses: {
    202: json(messageSchema, "Mailed if the address has an account"),
    ...errors(...BODY_ERRORS, "turnstile_required", "turnstile_failed", "turnstile_unavailable", "rate_limited", "service_unavailable"),
  },
});

const resetRoute = sensitive(
  "reset_password",
  createRoute({
    method: "post",
    path: "/password/reset",
    tags,
    summary: "Set a new password with the mailed token: the mailbox's owner takes the account back",
    description:
      "Every session and pending challenge ends, every passkey is removed, and the address counts as verified. TOTP turned on after the address was confirmed stays, and then the reset needs a code or a recovery code (401 invalid_mfa_code until one is sent; ten tries a day). TOTP set up before the address was confirmed: a mailbox alone never removes it at once, so every session ends now and the rest of the reset (the new password, TOTP and passkeys removed) is held until `takes_effect_at` (RECOVERY_DELAY), announced by mail; a sign-in with a second factor before then cancels it.",
    middleware: [jsonOnly],
    request: body(resetSchema),
    responses: {
      200: json(resetDoneSchema, "The password is reset"),
      ...errors(...BODY_ERRORS, "invalid_link", "invalid_mfa_code", "password_too_common", "password_contains_context", "password_breached", "rate_limited"),
    },
  }),
);

const emailChangeRoute = sensitive(
  "change_email",
  createRoute({
    method: "post",
    path: "/email",
    tags,
    summary: "Change (or add) the address: a link goes to the new one, a notice to the old one; nothing changes until the link is used",
    description:
      'A step-up: the password, and while TOTP is on a code or a recovery code. The notice to the old address carries a "this was not me" link that undoes the change. 429 when three links to that address are pending already. Once MAIL_RECIPIENT_DAILY confirmations went to that address in 24 hours (whoever asked), the answer is still 202 but nothing is mailed or changed.',
    security: BEARER,
    middleware: [authed, jsonOnly],
    request: body(emailChangeSchema),
    responses: {
      202: json(messageSchema, "Mailed"),
      ...errors(...BODY_ERRORS, "invalid_token", "invalid_credentials", "invalid_mfa_code", "reauthentication_required", "email_taken", "rate_limited"),
    },
  }),
);

const emailConfirmRoute = createRoute({
  method: "post",
  path: "/email/confirm",
  tags,
  summary: "Complete an email change with the mailed token, as the account's holder",
  description: HOLDER,
  security: [...BEARER, {}],
  middleware: [authIfSent, jsonOnly],
  request: body(addressProofSchema),
  responses: {
    200: json(messageSchema, "The address is changed (and verified)"),
    ...errors(...BODY_ERRORS, "invalid_link", "email_taken", "account_proof_required", "invalid_credentials", "invalid_token", "rate_limited"),
  },
});

const revokeRoute = sensitive(
  "revoke_way_in",
  createRoute({
    method: "post",
    path: "/ways-in/revoke",
    tags,
    summary: '"This was not me": remove the way in a notice announced, and end every session',
    description:
      "The token comes from the link in the mail that announced a new passkey, a TOTP setup or an address change (valid 72 hours, single use; a password change or sign-out everywhere ends it). Every session, pending challenge and pending address change ends at once. The passkey is removed, or the former address comes back (ranked with TOTP while that is on, never above it). A TOTP setup is held for removal until `takes_effect_at` (RECOVERY_DELAY), announced by mail: a sign-in with a second factor before then cancels it. Then reset the password: whoever did it knows it.",
    middleware: [jsonOnly],
    request: body(linkTokenSchema),
    responses: { 200: json(revokedWayInSchema, "Removed, and signed out everywhere"), ...errors(...BODY_ERRORS, "invalid_link") },
  }),
);

export const recovery = openApiApp()
  .openapi(verifyRequestRoute, async (c) => {
    const claims = c.get("auth") as AccessClaims | undefined; // absent without a Bearer token
    const { email } = c.req.valid("json");
    if (claims) {
      await enforceLimit(c, "MAIL_LIMITER", `user:${claims.sub}`);
      await requestOwnVerification(deps(c), claims);
    } else {
      if (!email) throw new ApiError("validation_failed", undefined, { email: "is required without a Bearer token" });
      await enforceLimit(c, "MAIL_LIMITER", ipKey(clientIp(c)));
      await requestEmailVerificationByAddress(deps(c), email);
    }
    return c.json({ message: "If there is an unverified address, a verification link is on its way" }, 202);
  })
  .openapi(verifyRoute, async (c) => {
    const { token, password } = c.req.valid("json");
    await verifyEmail(deps(c), token, { claims: c.get("auth") as AccessClaims | undefined, password });
    return c.json({ message: "Your email address is verified" }, 200);
  })
  .openapi(forgotRoute, async (c) => {
    const { email } = c.req.valid("json");
    // Per client at the edge; per account by the link limits (a stranger cannot spend the owner's budget).
    await enforceLimit(c, "MAIL_LIMITER", ipKey(clientIp(c)));
    await forgotPassword(deps(c), email);
    return c.json({ message: "If that address has an account, a reset link is on its way" }, 202);
  })
  .openapi(resetRoute, async (c) => {
    const { token, new_password, ...offered } = c.req.valid("json");
    const done = await completePasswordReset(deps(c), token, new_password, offered);
    const message = done.heldUntil
      ? `Every session is signed out. Two-step sign-in on this account was set up before this address was confirmed, so the reset takes effect at ${done.heldUntil.toISOString()}: the new password works from then, unless someone signs in with a second factor before it`
      : "Your password is reset and every session is signed out; sign in with the new one";
    return c.json(
      {
        message,
        passkeys_removed: done.passkeysRemoved,
        identities_removed: done.identitiesRemoved,
        totp_removed: done.totpRemoved,
        ...(done.heldUntil ? { takes_effect_at: done.heldUntil.toISOString() } : {}),
        ...(done.warning ? { password_warning: done.warning } : {}),
      },
      200,
    );
  })
  .openapi(emailChangeRoute, async (c) => {
    const { new_email, ...check } = c.req.valid("json");
    await requestEmailChange(deps(c), asked(c, emailChangeRoute), new_email, check);
    return c.json({ message: "A confirmation link is on its way to the new address" }, 202);
  })
  .openapi(emailConfirmRoute, async (c) => {
    const { token, password } = c.req.valid("json");
    await confirmEmailChange(deps(c), token, { claims: c.get("auth") as AccessClaims | undefined, password });
    return c.json({ message: "Your email address is changed" }, 200);
  })
  .openapi(revokeRoute, async (c) => {
    const { removed, kind, heldUntil } = await revokeWayIn(deps(c), c.req.valid("json").token);
    const message = heldUntil
      ? `Every session is signed out. Two-step sign-in will be removed at ${heldUntil.toISOString()}, unless someone signs in with it before then; after that, reset your password.`
      : `${removed ? "Removed" : "It was gone already"}, and every session is signed out. Now reset your password: whoever did this knows it.`;
    return c.json({ message, removed, way: kind, ...(heldUntil ? { takes_effect_at: heldUntil.toISOString() } : {}) }, 200);
  });
