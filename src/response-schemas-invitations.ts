import { z } from "@hono/zod-openapi";

/** Answers of the invitation routes (routes/invitations.ts). Never a token or its hash. */

export const invitationSchema = z
  .object({
    id: z.string(),
    org_id: z.string(),
    email: z.string().openapi({ description: "lower case" }),
    role: z.string(),
    invited_by: z.string().nullable().openapi({ description: "the inviter's user id" }),
    created_at: z.iso.datetime(),
    expires_at: z.iso.datetime().openapi({ description: "created_at + INVITATION_TTL" }),
  })
  .openapi("Invitation", {
    example: {
      id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
      org_id: "3f0c1d2e-4b5a-6978-8a9b-0c1d2e3f4a5b",
      email: "bob@example.com",
      role: "member",
      invited_by: "0b6f2a4e-8c1d-4f5e-9a7b-2c3d4e5f6a7b",
      created_at: "2026-12-07T10:00:00.000Z",
      expires_at: "2026-12-14T10:00:00.000Z",
    },
  });

export const invitationCreatedSchema = z.object({ invitation: invitationSchema }).openapi("InvitationCreated");
export const invitationsSchema = z.object({ invitations: z.array(invitationSchema) }).openapi("Invitations");

/** The organization joined: the contract's Organization object, role = the caller's (the invited one). */
export const joinedOrganizationSchema = z
  .object({
    organization: z.object({
      id: z.string(),
      name: z.string(),
      slug: z.string(),
      role: z.string(),
      created_at: z.iso.datetime(),
    }),
  })
  .openapi("InvitationAccepted", {
    example: {
      organization: { id: "3f0c1d2e-4b5a-6978-8a9b-0c1d2e3f4a5b", name: "Acme", slug: "acme", role: "member", created_at: "2026-12-01T10:00:00.000Z" },
    },
  });
