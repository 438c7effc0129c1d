import { createRoute } from "@hono/zod-openapi";
import { deleteAccount, profile, securityView } from "../auth/account/account";
import { changeUsername } from "../auth/account/username";
import { listSessions, revokeOwnSession } from "../auth/core/logout";
import { changePassword } from "../auth/password/change";
import { jsonOnly } from "../middleware/json-only";
import { requireAuth } from "../middleware/require-auth";
import { meSchema, messageSchema, meWithFactorsSchema, protectedSchema, securitySchema, sessionsPageSchema } from "../response-schemas";
import { passwordChangedSchema } from "../response-schemas-passwords";
import { deleteMeSchema, freshCheckSchema, listSessionsQuerySchema, passwordChangeSchema, profilePatchSchema, sessionIdSchema } from "../schemas";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, errorsDuringEnrolment, json, openApiApp } from "./openapi";
import { page, timeIdCursor } from "./pagination";
import { factorsShape, publicUser, sessionShape, wayInShape } from "./shapes";
import { asked, sensitive } from "./step-up";

const authed = requireAuth();
const tags = ["Account"];
const bearer = { security: BEARER, middleware: [authed], tags };

const protectedRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/protected",
  summary: "A protected route: answered from the access token alone, without D1",
  responses: { 200: json(protectedSchema, "The token is valid"), ...errors("invalid_request", "invalid_token") },
});

const meRoute = createRoute({
  ...bearer,
  // REQUIRE_MFA: a session that must enrol a second factor reads this too (the app shows what is enrolled).
  middleware: [requireAuth({ duringEnrolment: true })],
  method: "get",
  path: "/me",
  summary: "The signed-in user, and which second factors and passkeys they have",
  responses: { 200: json(meWithFactorsSchema, "The user"), ...errorsDuringEnrolment("invalid_request", "invalid_token") },
});

const patchMeRoute = createRoute({
  ...bearer,
  method: "patch",
  path: "/me",
  summary: "Set or change the username (an account that signed up without one may add it later)",
  description:
    "409 username_taken when another account has it, regardless of case. Access tokens issued before keep the old `username` claim until they expire (ACCESS_TOKEN_TTL); the next refresh carries the new one.",
  middleware: [authed, jsonOnly],
  request: body(profilePatchSchema),
  responses: { 200: json(meSchema, "The user, changed"), ...errors(...BODY_ERRORS, "invalid_token", "username_taken") },
});

const securityRoute = createRoute({
  ...bearer,
  // REQUIRE_MFA: an enrolment-only session reads it too (what setting a factor up asks of this account).
  middleware: [requireAuth({ duringEnrolment: true })],
  method: "get",
  path: "/me/security",
  summary: "The account's ways in (when each was added, by which session), this session's assurance, and what each sensitive action needs",
  responses: { 200: json(securitySchema, "The security view"), ...errorsDuringEnrolment("invalid_request", "invalid_token") },
});

const STEP_UP_TEXT =
  "A step-up: the password, and while TOTP is on a code or a recovery code (401 invalid_mfa_code when missing). Wrong ones count against this session's own budget (STEP_UP_MAX_FAILURES, then 401 invalid_token: signed out), never the account lock.";

const deleteMeRoute = sensitive(
  "delete_account",
  createRoute({
    ...bearer,
    method: "delete",
    path: "/me",
    summary: "Delete the account: the user, their sessions and links; their access tokens stop working",
    description: `${STEP_UP_TEXT} 409 last_admin for the last active admin; 409 last_owner for the only owner of an organization with other members (hand it over or delete it first). A 503 means: send it again.`,
    middleware: [authed, jsonOnly],
    request: body(deleteMeSchema),
    responses: {
      200: json(messageSchema, "Deleted"),
      ...errors(
        ...BODY_ERRORS,
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "reauthentication_required",
        "last_admin",
        "last_owner",
        "rate_limited",
      ),
    },
  }),
);

const passwordRoute = sensitive(
  "change_password",
  createRoute({
    ...bearer,
    method: "post",
    path: "/password",
    summary: "Change the password; every other session ends",
    description: `${STEP_UP_TEXT} The new password passes the password policy (docs/passwords.md) before the step-up spends anything. A 503 means: send it again.`,
    middleware: [authed, jsonOnly],
    request: body(passwordChangeSchema),
    responses: {
      200: json(passwordChangedSchema, "Changed"),
      ...errors(
        ...BODY_ERRORS,
        "invalid_token",
        "invalid_credentials",
        "invalid_mfa_code",
        "password_not_set",
        "password_too_common",
        "password_contains_context",
        "password_breached",
        "rate_limited",
      ),
    },
  }),
);

const sessionsRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/sessions",
  summary: "The user's sessions, newest first, a page at a time",
  request: { query: listSessionsQuerySchema },
  responses: { 200: json(sessionsPageSchema, "A page of sessions"), ...errors("invalid_request", "validation_failed", "invalid_token") },
});

const deleteSessionRoute = sensitive(
  "end_sessions",
  createRoute({
    ...bearer,
    method: "delete",
    path: "/sessions/{id}",
    summary: "End one of the user's sessions",
    description: `This session's own id needs nothing (as POST /logout). Another session takes the step-up end_sessions: ${STEP_UP_TEXT} An account without a password: a sign-in within STEP_UP_MAX_AGE.`,
    middleware: [authed, jsonOnly],
    request: { params: sessionIdSchema, ...body(freshCheckSchema, false) },
    responses: {
      200: json(messageSchema, "Ended (again 200 while its tokens could still live)"),
      ...errors(...BODY_ERRORS, "invalid_token", "invalid_credentials", "invalid_mfa_code", "reauthentication_required", "not_found", "rate_limited"),
    },
  }),
);

export const account = openApiApp()
  .openapi(protectedRoute, (c) => {
    const { sub, username } = c.get("auth");
    return c.json({ message: `Hello, ${username ?? "there"}. Your access token is valid.`, user_id: sub, username }, 200);
  })
  .openapi(meRoute, async (c) => {
    const found = await profile(deps(c), c.get("auth"));
    return c.json({ user: publicUser(found.user), factors: factorsShape(found.user, found.passkeys) }, 200);
  })
  .openapi(patchMeRoute, async (c) => {
    const user = await changeUsername(deps(c), c.get("auth"), c.req.valid("json").username);
    return c.json({ user: publicUser(user) }, 200);
  })
  .openapi(securityRoute, async (c) => {
    const claims = c.get("auth");
    const view = await securityView(deps(c), claims);
    const session = { id: claims.sid, auth_time: new Date((claims.auth_time ?? claims.iat) * 1000).toISOString(), amr: claims.amr ?? [] };
    return c.json({ ways_in: view.waysIn.map((w) => wayInShape(w, claims.sid)), session, step_up: view.stepUp }, 200);
  })
  .openapi(deleteMeRoute, async (c) => {
    await deleteAccount(deps(c), asked(c, deleteMeRoute), c.req.valid("json"));
    return c.json({ message: "Your account is deleted" }, 200);
  })
  .openapi(passwordRoute, async (c) => {
    const { revoked, warning } = await changePassword(deps(c), asked(c, passwordRoute), c.req.valid("json"));
    // Says what happened: 0 reads as a failure to a person unless the message explains it.
    const message =
      revoked === 0
        ? "Password changed; no other session was signed in, this one stays"
        : `Password changed; ${revoked} other session${revoked === 1 ? " was" : "s were"} signed out, this one stays`;
    return c.json({ message, sessions_revoked: revoked, ...(warning ? { password_warning: warning } : {}) }, 200);
  })
  .openapi(sessionsRoute, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const claims = c.get("auth");
    const rows = await listSessions(deps(c), claims, limit + 1, cursor ? timeIdCursor(cursor) : undefined);
    const { items, next_cursor } = page(rows, limit, (s) => [s.createdAt.getTime(), s.id]);
    return c.json({ sessions: items.map((s) => sessionShape(s, claims.sid)), next_cursor }, 200);
  })
  .openapi(deleteSessionRoute, async (c) => {
    await revokeOwnSession(deps(c), asked(c, deleteSessionRoute), c.req.valid("param").id, c.req.valid("json") ?? {});
    return c.json({ message: "Session revoked" }, 200);
  });
