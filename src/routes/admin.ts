import { createRoute } from "@hono/zod-openapi";
import { auditPage, endAllSessions, endUserSessions, updateUserByAdmin, userForAdmin, userPage } from "../auth/account/admin";
import { stepUp } from "../auth/core/step-up";
import { type KeyView, keyRingView, retireKey, rotateKeys } from "../auth/keys/operations";
import type { User } from "../db/schema";
import { jsonOnly } from "../middleware/json-only";
import { requireRole } from "../middleware/require-auth";
import { adminUserSchema, auditPageSchema, cutOffSchema, keyRingSchema, revokedCountSchema, usersPageSchema } from "../response-schemas";
import { adminUserPatchSchema, freshCheckSchema, kidSchema, listAuditQuerySchema, listUsersQuerySchema, userIdSchema } from "../schemas";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp } from "./openapi";
import { decodeCursor, page, timeIdCursor } from "./pagination";
import { factorsShape, publicUser } from "./shapes";
import { asked, sensitive } from "./step-up";

const admin = { security: BEARER, tags: ["Admin"] };
/** What a step-up can answer (auth/core/step-up.ts), besides the guard's own 401 and 403. */
const STEP_UP_ERRORS = ["invalid_token", "forbidden", "invalid_credentials", "invalid_mfa_code", "reauthentication_required", "rate_limited"] as const;

const usersRoute = createRoute({
  ...admin,
  method: "get",
  path: "/users",
  summary: "Every user, newest first, a page at a time (role admin)",
  request: { query: listUsersQuerySchema },
  responses: { 200: json(usersPageSchema, "A page of users"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden") },
});

const auditRoute = createRoute({
  ...admin,
  method: "get",
  path: "/audit",
  summary: "Security events, newest first, optionally one user's (role admin)",
  request: { query: listAuditQuerySchema },
  responses: { 200: json(auditPageSchema, "A page of events"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden") },
});

const userRoute = createRoute({
  ...admin,
  method: "get",
  path: "/users/{id}",
  summary: "One user (role admin)",
  request: { params: userIdSchema },
  responses: { 200: json(adminUserSchema, "The user"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden", "not_found") },
});

const patchUserRoute = sensitive(
  "change_roles",
  createRoute({
    ...admin,
    method: "patch",
    path: "/users/{id}",
    summary: "Change a user's roles or disable them (role admin); every session of the user ends at once",
    description:
      "A change of roles takes the acting admin's step-up (change_roles: `current_password`, and a code while TOTP is on); disabling alone does not, so taking access away stays quick. An admin cannot remove their own admin role or disable themselves, and at least one active admin always remains (409 last_admin; checked in the statement itself, so two admins disabling each other at once cannot both succeed). Every change, and every refusal, is audited with the acting admin.",
    middleware: [jsonOnly],
    request: { params: userIdSchema, ...body(adminUserPatchSchema) },
    responses: { 200: json(adminUserSchema, "The user, changed"), ...errors(...BODY_ERRORS, ...STEP_UP_ERRORS, "not_found", "last_admin") },
  }),
);

const endUserSessionsRoute = createRoute({
  ...admin,
  method: "post",
  path: "/users/{id}/sessions/revoke",
  summary: "End every session of one user, leaving the account usable (role admin)",
  description:
    "A new session epoch, as the user's own POST /logout/all: every access token and refresh token of the user dies (their apps' grants too), and the user can sign in again at once. No step-up: it grants nothing. Your own id ends your sessions too, this one included. Audited (admin_sessions_ended). A 503 means: send it again.",
  request: { params: userIdSchema },
  responses: { 200: json(revokedCountSchema, "Ended"), ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden", "not_found") },
});

const endAllSessionsRoute = createRoute({
  ...admin,
  method: "post",
  path: "/sessions/revoke-all",
  summary: "End every session of every user, yours included (role admin)",
  description:
    "A cut-off: every access token of a sign-in before it is refused (everywhere within about 60 s, KV's propagation), and no session signed in before it refreshes again; apps' grants resting on such a sign-in end too. Accounts are left as they are: everyone signs in again. One KV entry, whatever the number of sessions, kept until the last session it ends would have expired. No step-up: it grants nothing. Audited (all_sessions_ended). A 503 means: send it again.",
  responses: { 200: json(cutOffSchema, "Every session signed in before signed_in_before is over"), ...errors("invalid_request", "invalid_token", "forbidden") },
});

const keysRoute = createRoute({
  ...admin,
  method: "get",
  path: "/keys",
  summary: "The signing key ring: every key's state and times, and the windows (role admin; SIGNING_KEYS rotating)",
  responses: { 200: json(keyRingSchema, "The ring"), ...errors("invalid_request", "invalid_token", "forbidden", "keys_not_rotating") },
});

const rotateRoute = sensitive(
  "rotate_signing_keys",
  createRoute({
    ...admin,
    method: "post",
    path: "/keys/rotate",
    summary: "Turn the ring now: the next key signs, the current one verifies until its tokens expire (role admin)",
    description:
      "The step-up rotate_signing_keys: `current_password`, and a code while TOTP is on. The cron turns the ring every KEY_ROTATION_DAYS; this does it at once. Refused with 409 key_not_ready until the next key has been published for JWKS_MAX_AGE + KEY_PROPAGATION seconds (the answer says when), so no verifier meets a key it has not fetched. Live tokens keep working. Audited (signing_key_rotated).",
    middleware: [jsonOnly],
    request: body(freshCheckSchema),
    responses: { 200: json(keyRingSchema, "Turned"), ...errors(...BODY_ERRORS, ...STEP_UP_ERRORS, "keys_not_rotating", "key_not_ready") },
  }),
);

const retireRoute = sensitive(
  "retire_signing_key",
  createRoute({
    ...admin,
    method: "post",
    path: "/keys/{kid}/retire",
    summary: "Emergency: retire a key at once, e.g. a leaked one (role admin)",
    description:
      "The step-up retire_signing_key: `current_password`, and a code while TOTP is on. The key leaves the JWKS and stops verifying now; every access token it signed is refused from now on by this API (everywhere within KEY_PROPAGATION seconds) and by resource servers once their JWKS cache (JWKS_MAX_AGE) runs out. Clients refresh to get a token from the new key: refresh tokens are not signed, so nobody is signed out. Retiring the current key makes the next one sign at once, before verifiers may have fetched it; they fetch it on the first unknown kid. Audited (signing_key_retired).",
    middleware: [jsonOnly],
    request: { params: kidSchema, ...body(freshCheckSchema) },
    responses: {
      200: json(keyRingSchema, "Retired"),
      ...errors(...BODY_ERRORS, ...STEP_UP_ERRORS, "keys_not_rotating", "not_found"),
    },
  }),
);

const ringView = (view: KeyView) => ({
  ...view,
  keys: view.keys.map((k) => ({
    kid: k.kid,
    state: k.state,
    origin: k.origin,
    created_at: k.createdAt.toISOString(),
    published_at: k.publishedAt?.toISOString() ?? null,
    activated_at: k.activatedAt?.toISOString() ?? null,
    deactivated_at: k.deactivatedAt?.toISOString() ?? null,
    retire_after: k.retireAfter?.toISOString() ?? null,
    retired_at: k.retiredAt?.toISOString() ?? null,
    retired_reason: k.retiredReason,
  })),
});

const adminUser = (u: User) => ({ user: publicUser(u), disabled: u.disabledAt !== null });

/** Mounted at /admin. The guard covers the whole sub-app, so no admin route can be public by accident. */
export const adminApp = openApiApp();
adminApp.use(requireRole("admin"));
adminApp
  .openapi(usersRoute, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const rows = await userPage(deps(c), limit + 1, cursor ? timeIdCursor(cursor) : undefined);
    const { items, next_cursor } = page(rows, limit, (u) => [u.createdAt.getTime(), u.id]);
    return c.json({ users: items.map(publicUser), next_cursor }, 200);
  })
  .openapi(userRoute, async (c) => {
    const found = await userForAdmin(deps(c), c.req.valid("param").id);
    return c.json({ ...adminUser(found.user), factors: factorsShape(found.user, found.passkeys) }, 200);
  })
  .openapi(patchUserRoute, async (c) => {
    const { roles, disabled, ...check } = c.req.valid("json");
    const user = await updateUserByAdmin(deps(c), asked(c, patchUserRoute), c.req.valid("param").id, { roles, disabled }, check);
    return c.json(adminUser(user), 200);
  })
  .openapi(endUserSessionsRoute, async (c) => {
    const revoked = await endUserSessions(deps(c), c.get("auth"), c.req.valid("param").id);
    return c.json({ message: `Ended ${revoked} session${revoked === 1 ? "" : "s"} of the user`, sessions_revoked: revoked }, 200);
  })
  .openapi(endAllSessionsRoute, async (c) => {
    const before = await endAllSessions(deps(c), c.get("auth"));
    return c.json({ message: "Every session signed in before this time is over; yours too: sign in again", signed_in_before: before.toISOString() }, 200);
  })
  .openapi(keysRoute, async (c) => c.json(ringView(await keyRingView(deps(c))), 200))
  .openapi(rotateRoute, async (c) => {
    const proof = await stepUp(deps(c), asked(c, rotateRoute), c.req.valid("json"));
    return c.json(ringView(await rotateKeys(deps(c), proof)), 200);
  })
  .openapi(retireRoute, async (c) => {
    const proof = await stepUp(deps(c), asked(c, retireRoute), c.req.valid("json"));
    return c.json(ringView(await retireKey(deps(c), proof, c.req.valid("param").kid)), 200);
  })
  .openapi(auditRoute, async (c) => {
    const { user_id, cursor, limit } = c.req.valid("query");
    const beforeId = cursor ? decodeCursor(cursor, ([id]) => (Number.isSafeInteger(id) ? (id as number) : undefined)) : undefined;
    const rows = await auditPage(deps(c), limit + 1, { userId: user_id, beforeId });
    const { items, next_cursor } = page(rows, limit, (e) => [e.id]);
    const events = items.map((e) => ({
      id: e.id,
      created_at: e.createdAt.toISOString(),
      event: e.event,
      user_id: e.userId,
      session_id: e.sessionId,
      request_id: e.requestId,
      ip: e.ip,
      detail: e.detail,
    }));
    return c.json({ events, next_cursor }, 200);
  });
