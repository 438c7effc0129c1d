import { createRoute } from "@hono/zod-openapi";
import { usernameOf } from "../auth/core/ways-in";
import { changeMemberRole, membersOf, removeMember, transferOwnership } from "../auth/organizations/members";
import { createOrganization, deleteOrganization, myOrganizations, organizationFor, updateOrganization } from "../auth/organizations/organizations";
import { switchOrganization } from "../auth/organizations/switch";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import { requireAuth } from "../middleware/require-auth";
import { messageSchema } from "../response-schemas";
import { memberBodySchema, membersPageSchema, organizationBodySchema, organizationsSchema, switchedSchema } from "../response-schemas-orgs";
import {
  memberParamSchema,
  orgCreateSchema,
  orgDeleteSchema,
  orgIdParamSchema,
  orgPatchSchema,
  pageQuerySchema,
  roleChangeSchema,
  switchSchema,
  transferSchema,
} from "../schemas-orgs";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp } from "./openapi";
import { page, timeIdCursor } from "./pagination";
import { asked, sensitive } from "./step-up";

/** Organizations, members, ownership and the active organization (docs/organizations.md). Every route takes a first-party access token. */

const bearer = { security: BEARER, middleware: [requireAuth()], tags: ["Organizations"] };
const bearerBody = { security: BEARER, middleware: [requireAuth(), jsonOnly], tags: ["Organizations"] };
const READ_ERRORS = ["invalid_request", "validation_failed", "invalid_token", "not_found"] as const;
const STEP_UP_ERRORS = ["invalid_credentials", "invalid_mfa_code", "reauthentication_required", "rate_limited"] as const;
const NOT_MEMBER = "404 not_found for an organization the caller is not in, existing or not (no enumeration).";

const createOrgRoute = createRoute({
  ...bearerBody,
  method: "post",
  path: "/orgs",
  summary: "Create an organization; the caller becomes its owner",
  description: "A user belongs to at most 100 organizations (409 too_many_organizations). The slug is unique regardless of case (409 org_slug_taken).",
  request: body(orgCreateSchema),
  responses: { 201: json(organizationBodySchema, "Created"), ...errors(...BODY_ERRORS, "invalid_token", "org_slug_taken", "too_many_organizations") },
});

const listOrgsRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/orgs",
  summary: "The caller's organizations with their role in each, newest membership first",
  responses: { 200: json(organizationsSchema, "The organizations"), ...errors("invalid_request", "invalid_token") },
});

const switchRoute = createRoute({
  ...bearerBody,
  method: "post",
  path: "/orgs/switch",
  summary: "Act for an organization (or none): a new access token carrying it",
  description:
    "The session's active organization becomes `org_id` (null: none), only while the caller is its member (else 404 not_found). The new access token carries org_id, org_slug, org_role and org_permissions; the presented one is revoked here. The refresh token stays the same: every later refresh carries the organization, as it then is (a role change, a removal or a deletion shows at the next refresh). A 503 means: send it again.",
  request: body(switchSchema),
  responses: { 200: json(switchedSchema, "Switched"), ...errors(...BODY_ERRORS, "invalid_token", "not_found") },
});

const getOrgRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/orgs/{org_id}",
  summary: "One of the caller's organizations",
  description: NOT_MEMBER,
  request: { params: orgIdParamSchema },
  responses: { 200: json(organizationBodySchema, "The organization"), ...errors(...READ_ERRORS) },
});

const patchOrgRoute = createRoute({
  ...bearerBody,
  method: "patch",
  path: "/orgs/{org_id}",
  summary: "Rename or re-slug an organization (org:update: owners and admins)",
  description: `${NOT_MEMBER} Tokens carry the new slug from their next refresh or switch.`,
  request: { params: orgIdParamSchema, ...body(orgPatchSchema) },
  responses: { 200: json(organizationBodySchema, "Changed"), ...errors(...BODY_ERRORS, "invalid_token", "forbidden", "not_found", "org_slug_taken") },
});

const deleteOrgRoute = sensitive(
  "manage_organization",
  createRoute({
    ...bearerBody,
    method: "delete",
    path: "/orgs/{org_id}",
    summary: "Delete an organization (an owner, with the step-up manage_organization)",
    description: `${NOT_MEMBER} The step-up: \`current_password\`, and a code or recovery code while TOTP is on. Memberships, invitations and the organization's API keys go with it; sessions acting for it lose its claims at their next refresh.`,
    request: { params: orgIdParamSchema, ...body(orgDeleteSchema) },
    responses: { 200: json(messageSchema, "Deleted"), ...errors(...BODY_ERRORS, ...STEP_UP_ERRORS, "invalid_token", "forbidden", "not_found") },
  }),
);

const membersRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/orgs/{org_id}/members",
  summary: "The organization's members with their roles, newest first, a page at a time (any member)",
  description: NOT_MEMBER,
  request: { params: orgIdParamSchema, query: pageQuerySchema },
  responses: { 200: json(membersPageSchema, "A page of members"), ...errors(...READ_ERRORS, "forbidden") },
});

const roleRoute = createRoute({
  ...bearerBody,
  method: "patch",
  path: "/orgs/{org_id}/members/{user_id}",
  summary: "Change a member's role (members:manage)",
  description:
    "Never above the caller's rank, nor on a member above it: an admin cannot change an owner or make one (403 forbidden). An unknown role is 400 validation_failed. An organization keeps an owner: demoting the last one is 409 last_owner, checked in the statement itself. The member's tokens carry the new role from their next refresh (at most ACCESS_TOKEN_TTL).",
  request: { params: memberParamSchema, ...body(roleChangeSchema) },
  responses: { 200: json(memberBodySchema, "Changed"), ...errors(...BODY_ERRORS, "invalid_token", "forbidden", "not_found", "last_owner") },
});

const removeRoute = createRoute({
  ...bearer,
  method: "delete",
  path: "/orgs/{org_id}/members/{user_id}",
  summary: "Remove a member (members:manage, the same rank rule), or leave (your own user id)",
  description:
    "The last owner can neither leave nor be removed (409 last_owner). The member's sessions acting for the organization lose it: their next refresh carries no organization.",
  request: { params: memberParamSchema },
  responses: { 200: json(messageSchema, "Removed"), ...errors(...READ_ERRORS, "forbidden", "last_owner") },
});

const transferRoute = sensitive(
  "manage_organization",
  createRoute({
    ...bearerBody,
    method: "post",
    path: "/orgs/{org_id}/transfer",
    summary: "Hand ownership to another member (an owner, with the step-up manage_organization)",
    description: `${NOT_MEMBER} The member becomes an owner and the caller an admin, in one batch, only while that member is one (else 404). The step-up: \`current_password\`, and a code or recovery code while TOTP is on.`,
    request: { params: orgIdParamSchema, ...body(transferSchema) },
    responses: { 200: json(organizationBodySchema, "Handed over"), ...errors(...BODY_ERRORS, ...STEP_UP_ERRORS, "invalid_token", "forbidden", "not_found") },
  }),
);

const orgView = (o: { id: string; name: string; slug: string; role: string; createdAt: Date }) => ({
  id: o.id,
  name: o.name,
  slug: o.slug,
  role: o.role,
  created_at: o.createdAt.toISOString(),
});

export const organizationRoutes = openApiApp();
// /orgs/switch sits where /orgs/{org_id} would match it: its other methods answer 405 as any path's do,
// not a read of an organization named "switch" (middleware: it runs before the route that would match).
organizationRoutes.use("/orgs/switch", async function switchIsPostOnly(c, next) {
  if (c.req.method !== "POST" && c.req.method !== "OPTIONS") {
    throw new ApiError("method_not_allowed", "Use POST, OPTIONS for this path", undefined, { Allow: "POST, OPTIONS" });
  }
  await next();
});
organizationRoutes
  .openapi(createOrgRoute, async (c) => c.json({ organization: orgView(await createOrganization(deps(c), c.get("auth").sub, c.req.valid("json"))) }, 201))
  .openapi(listOrgsRoute, async (c) => c.json({ organizations: (await myOrganizations(deps(c), c.get("auth").sub)).map(orgView) }, 200))
  .openapi(switchRoute, async (c) => {
    const done = await switchOrganization(deps(c), c.get("auth"), c.req.valid("json").org_id);
    const organization = done.organization ? orgView(done.organization) : null;
    return c.json({ access_token: done.accessToken, token_type: "Bearer" as const, expires_in: done.expiresIn, organization }, 200);
  })
  .openapi(getOrgRoute, async (c) => c.json({ organization: orgView(await organizationFor(deps(c), c.get("auth").sub, c.req.valid("param").org_id)) }, 200))
  .openapi(patchOrgRoute, async (c) => {
    const org = await updateOrganization(deps(c), c.get("auth").sub, c.req.valid("param").org_id, c.req.valid("json"));
    return c.json({ organization: orgView(org) }, 200);
  })
  .openapi(deleteOrgRoute, async (c) => {
    await deleteOrganization(deps(c), asked(c, deleteOrgRoute), c.req.valid("param").org_id, c.req.valid("json"));
    return c.json({ message: "Organization deleted" }, 200);
  })
  .openapi(membersRoute, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const rows = await membersOf(deps(c), c.get("auth").sub, c.req.valid("param").org_id, limit + 1, cursor ? timeIdCursor(cursor) : undefined);
    const { items, next_cursor } = page(rows, limit, (m) => [m.joinedAt.getTime(), m.userId]);
    const members = items.map((m) => ({ user_id: m.userId, username: usernameOf(m), email: m.email, role: m.role, joined_at: m.joinedAt.toISOString() }));
    return c.json({ members, next_cursor }, 200);
  })
  .openapi(roleRoute, async (c) => {
    const { org_id, user_id } = c.req.valid("param");
    const m = await changeMemberRole(deps(c), c.get("auth").sub, org_id, user_id, c.req.valid("json").role);
    return c.json({ member: { user_id: m.userId, role: m.role, joined_at: m.joinedAt.toISOString() } }, 200);
  })
  .openapi(removeRoute, async (c) => {
    const { org_id, user_id } = c.req.valid("param");
    const done = await removeMember(deps(c), c.get("auth").sub, org_id, user_id);
    return c.json({ message: done === "left" ? "You left the organization" : "Member removed" }, 200);
  })
  .openapi(transferRoute, async (c) => {
    const { org_id } = c.req.valid("param");
    const { user_id, ...check } = c.req.valid("json");
    const ask = asked(c, transferRoute);
    await transferOwnership(deps(c), ask, org_id, user_id, check);
    return c.json({ organization: orgView(await organizationFor(deps(c), ask.claims.sub, org_id)) }, 200);
  });
