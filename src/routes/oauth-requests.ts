import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { approveRequest, denyRequest, describeRequest } from "../auth/oauth-server/consent";
import type { AppEnv } from "../env";
import { requireAuth } from "../middleware/require-auth";
import { authorizationRequestSchema, redirectToSchema, requestIdParamSchema } from "../response-schemas-consent";
import { deps } from "./deps";
import { BEARER, errors, json, openApiApp } from "./openapi";

/**
 * The app's consent page (docs/oauth-server.md): what an authorization request asks, and the user's
 * answer. Signed in with this API's own access token; the rules are in auth/oauth-server/consent.ts.
 */

const tags = ["Authorization server"];
const authed = requireAuth();

/** A deny may come from a user who is not signed in: with an Authorization header it must be valid, without one it is the request id alone. */
const authIfBearer = createMiddleware<AppEnv>(async function authIfBearer(c, next) {
  if (c.req.header("authorization") === undefined) return next();
  return authed(c, next);
});

const describeRoute = createRoute({
  method: "get",
  path: "/oauth2/requests/{id}",
  tags,
  security: BEARER,
  middleware: [authed] as const,
  summary: "What an authorization request asks, for the consent page",
  description:
    "The first signed-in session that opens a request holds it: any other session gets 404, except a session of the same user signed in after the request was made (the new sign-in that login_required asks for), which takes it over.",
  request: { params: requestIdParamSchema },
  responses: { 200: json(authorizationRequestSchema, "The request"), ...errors("invalid_request", "validation_failed", "invalid_token", "not_found") },
});

const approveRoute = createRoute({
  method: "post",
  path: "/oauth2/requests/{id}/approve",
  tags,
  security: BEARER,
  middleware: [authed] as const,
  summary: "Approve an authorization request (once)",
  description:
    "By the session that holds it. Answers where to send the browser: the redirect_uri with a one-time code, state and iss. prompt=none without a remembered consent covering the request: with error=consent_required instead (and login_required when the sign-in is too old). 401 reauthentication_required: the app asked for a newer sign-in (prompt=login, max_age): sign in again, then approve with the new session.",
  request: { params: requestIdParamSchema },
  responses: {
    200: json(redirectToSchema, "Send the browser to redirect_to"),
    ...errors("invalid_request", "validation_failed", "invalid_token", "reauthentication_required", "not_found", "payload_too_large"),
  },
});

const denyRoute = createRoute({
  method: "post",
  path: "/oauth2/requests/{id}/deny",
  tags,
  security: [...BEARER, {}],
  middleware: [authIfBearer] as const,
  summary: "Deny an authorization request (once)",
  description:
    "With the holding session's bearer: error=access_denied. Without a bearer (the user did not sign in): error=login_required for prompt=none, access_denied otherwise. Answers where to send the browser.",
  request: { params: requestIdParamSchema },
  responses: {
    200: json(redirectToSchema, "Send the browser to redirect_to"),
    ...errors("invalid_request", "validation_failed", "invalid_token", "not_found", "payload_too_large"),
  },
});

export const oauthRequests = openApiApp()
  .openapi(describeRoute, async (c) => c.json(await describeRequest(deps(c), c.get("auth"), c.req.valid("param").id), 200))
  .openapi(approveRoute, async (c) => c.json(await approveRequest(deps(c), c.get("auth"), c.req.valid("param").id), 200))
  .openapi(denyRoute, async (c) => c.json(await denyRequest(deps(c), c.get("auth") ?? null, c.req.valid("param").id), 200));
