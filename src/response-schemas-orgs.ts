import { z } from "@hono/zod-openapi";

/** Answers of the organizations' routes (routes/organizations.ts, routes/admin-orgs.ts). */

const nextCursor = z.string().nullable().openapi({ description: "pass as cursor for the next page; null on the last" });

export const organizationSchema = z
  .object({
    id: z.string().openapi({ description: "opaque: the org_id claim" }),
    name: z.string(),
    slug: z.string().openapi({ description: "the org_slug claim" }),
    role: z.string().openapi({ description: "the caller's role in it: the org_role claim" }),
    created_at: z.iso.datetime(),
  })
  .openapi("Organization");

export const organizationBodySchema = z.object({ organization: organizationSchema }).openapi("OrganizationBody");
export const organizationsSchema = z.object({ organizations: z.array(organizationSchema) }).openapi("Organizations");

export const memberSchema = z
  .object({
    user_id: z.string(),
    username: z.string().nullable().openapi({ description: "null: the member has no username (signed up by mail or with only an address)" }),
    email: z.string().nullable(),
    role: z.string(),
    joined_at: z.iso.datetime(),
  })
  .openapi("Member");
export const memberBodySchema = z.object({ member: z.object({ user_id: z.string(), role: z.string(), joined_at: z.iso.datetime() }) }).openapi("MemberBody");
export const membersPageSchema = z.object({ members: z.array(memberSchema), next_cursor: nextCursor }).openapi("MembersPage");

export const switchedSchema = z
  .object({
    access_token: z.string().openapi({ description: "carries org_id, org_slug, org_role and org_permissions while an organization is active" }),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int(),
    organization: z.union([organizationSchema, z.null()]).openapi({ description: "null: no organization is active" }),
  })
  .openapi("OrganizationSwitched");

export const adminOrganizationsPageSchema = z
  .object({
    organizations: z.array(z.object({ id: z.string(), name: z.string(), slug: z.string(), created_at: z.iso.datetime(), members: z.number().int() })),
    next_cursor: nextCursor,
  })
  .openapi("AdminOrganizationsPage");
