import { z } from "@hono/zod-openapi";
import { emailSchema } from "./schemas";

/**
 * Requests of the invitation routes (routes/invitations.ts). Whether a role exists and whether the
 * inviter may give it are the domain's rules (auth/organizations/invitations.ts): validation_failed
 * with fields for an unknown role, forbidden for one above the inviter's.
 */

const orgId = z
  .string()
  .max(64, "is not an organization id")
  .openapi({ param: { name: "org_id", in: "path" }, example: "3f0c1d2e-4b5a-6978-8a9b-0c1d2e3f4a5b" });

export const orgIdParamSchema = z.object({ org_id: orgId });

export const invitationParamSchema = z.object({
  org_id: orgId,
  id: z
    .string()
    .max(64, "is not an invitation id")
    .openapi({ param: { name: "id", in: "path" }, example: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" }),
});

export const invitationCreateSchema = z
  .object({
    email: emailSchema.openapi({ description: "the address to invite; stored lower case" }),
    role: z
      .string({ error: "is required" })
      .min(1, "is required")
      .max(32, "at most 32 characters")
      .openapi({ description: "owner, admin, member, or a role ORG_ROLES defines; never above the inviter's own" }),
  })
  .openapi("InvitationCreate", { example: { email: "bob@example.com", role: "member" } });

export const invitationAcceptSchema = z
  .object({
    token: z
      .string({ error: "is required" })
      .min(1, "is required")
      .max(100, "is not a valid invitation token")
      .openapi({ description: "the token from the mailed link (the URL fragment after #accept-invitation=)" }),
  })
  .openapi("InvitationAccept", { example: { token: "the-token-from-the-link" } });
