import { createRoute } from "@hono/zod-openapi";
import { acceptInvitation } from "../auth/organizations/accept-invitation";
import { invite, listInvitations, revokeInvitation } from "../auth/organizations/invitations";
import { jsonOnly } from "../middleware/json-only";
import { requireAuth } from "../middleware/require-auth";
import { messageSchema } from "../response-schemas";
import { invitationCreatedSchema, invitationsSchema, joinedOrganizationSchema } from "../response-schemas-invitations";
import { invitationAcceptSchema, invitationCreateSchema, invitationParamSchema, orgIdParamSchema } from "../schemas-invitations";
import { deps } from "./deps";
import { BEARER, BODY_ERRORS, body, errors, json, openApiApp } from "./openapi";

/** Invitations into an organization (docs/organizations.md, Invitations): owners and admins invite, list and revoke; the invited account accepts. */

const bearer = { security: BEARER, middleware: [requireAuth()], tags: ["Organizations"] };
const withBody = { security: BEARER, middleware: [requireAuth(), jsonOnly], tags: ["Organizations"] };

const createInvitationRoute = createRoute({
  ...withBody,
  method: "post",
  path: "/orgs/{org_id}/invitations",
  summary: "Invite an address into the organization with a role (owners and admins)",
  description:
    "Mails a single-use link (APP_URL#accept-invitation=<token>) valid for INVITATION_TTL, within the address's daily mail budget (MAIL_RECIPIENT_DAILY invitation mails; past it the invitation is stored but not mailed). The role is never above the inviter's own (an admin cannot invite an owner: forbidden). A pending invitation to the same address is replaced (revoked). 409 already_member when an account whose verified address this is belongs already; 409 too_many_invitations at 100 pending. 404 not_found when the caller is not a member.",
  request: { params: orgIdParamSchema, ...body(invitationCreateSchema) },
  responses: {
    201: json(invitationCreatedSchema, "Invited"),
    ...errors(...BODY_ERRORS, "invalid_token", "forbidden", "not_found", "already_member", "too_many_invitations", "rate_limited"),
  },
});

const listInvitationsRoute = createRoute({
  ...bearer,
  method: "get",
  path: "/orgs/{org_id}/invitations",
  summary: "The organization's pending invitations, newest first (owners and admins)",
  description: "Pending: not accepted, revoked or expired. At most 100, so no cursor.",
  request: { params: orgIdParamSchema },
  responses: { 200: json(invitationsSchema, "Pending invitations"), ...errors("validation_failed", "invalid_token", "forbidden", "not_found") },
});

const revokeInvitationRoute = createRoute({
  ...bearer,
  method: "delete",
  path: "/orgs/{org_id}/invitations/{id}",
  summary: "Revoke a pending invitation: its link is refused from then on (owners and admins)",
  description: "404 not_found for an unknown, accepted, revoked or expired invitation. An admin cannot revoke an invitation to the owner role (forbidden).",
  request: { params: invitationParamSchema },
  responses: { 200: json(messageSchema, "Revoked"), ...errors("validation_failed", "invalid_token", "forbidden", "not_found") },
});

const acceptInvitationRoute = createRoute({
  ...withBody,
  method: "post",
  path: "/invitations/accept",
  summary: "Accept an invitation: the caller becomes a member with the invited role",
  description:
    "Only for the account whose verified address is the invited one (403 invitation_wrong_account otherwise, or while the address is unconfirmed: the invitation stays usable). Single use. 400 invalid_link for an unknown, used, revoked or expired invitation; 409 already_member (the invitation stays unused); 409 too_many_organizations at 100 memberships. The session's active organization does not change: POST /orgs/switch.",
  request: body(invitationAcceptSchema),
  responses: {
    200: json(joinedOrganizationSchema, "Joined"),
    ...errors(...BODY_ERRORS, "invalid_token", "invalid_link", "invitation_wrong_account", "already_member", "too_many_organizations"),
  },
});

export const invitations = openApiApp();
invitations
  .openapi(createInvitationRoute, async (c) => {
    const invitation = await invite(deps(c), c.get("auth"), c.req.valid("param").org_id, c.req.valid("json"));
    return c.json({ invitation }, 201);
  })
  .openapi(listInvitationsRoute, async (c) => {
    return c.json({ invitations: await listInvitations(deps(c), c.get("auth"), c.req.valid("param").org_id) }, 200);
  })
  .openapi(revokeInvitationRoute, async (c) => {
    const { org_id, id } = c.req.valid("param");
    await revokeInvitation(deps(c), c.get("auth"), org_id, id);
    return c.json({ message: "Invitation revoked" }, 200);
  })
  .openapi(acceptInvitationRoute, async (c) => {
    return c.json({ organization: await acceptInvitation(deps(c), c.get("auth"), c.req.valid("json").token) }, 200);
  });
