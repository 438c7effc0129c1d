import { z } from "@hono/zod-openapi";
import { displayName, notBoth, stepUpExample, stepUpFields } from "./schemas";

/**
 * Requests of the organizations' routes (routes/organizations.ts, routes/admin-orgs.ts). The shape is
 * checked here; whether a role exists (ORG_ROLES) is the domain's (auth/organizations/), which answers
 * validation_failed with fields.
 */

const name = displayName.openapi({ example: "Acme Inc." });
/** Stored lower case, so unique regardless of case: the `org_slug` claim. */
const slug = z
  .string({ error: "is required" })
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$/, "3-40 letters, digits or -, not starting or ending with -")
  .openapi({ description: "3-40 of a-z, 0-9 and -, not starting or ending with -; stored lower case, unique", example: "acme" });
const id = (what: string, param: string) =>
  z
    .string()
    .max(64, `is not ${what}`)
    .openapi({ param: { name: param, in: "path" } });

export const orgIdParamSchema = z.object({ org_id: id("an organization id", "org_id") });
export const memberParamSchema = z.object({ org_id: id("an organization id", "org_id"), user_id: id("a user id", "user_id") });

export const orgCreateSchema = z.object({ name, slug }).openapi("OrganizationCreate", { example: { name: "Acme Inc.", slug: "acme" } });

export const orgPatchSchema = z
  .object({ name: name.optional(), slug: slug.optional() })
  .refine((v) => v.name !== undefined || v.slug !== undefined, { message: "send name or slug", path: ["name"] })
  .openapi("OrganizationPatch", { example: { name: "Acme Corporation" } });

export const orgDeleteSchema = z
  .object(stepUpFields)
  .refine(...notBoth)
  .openapi("OrganizationDelete", { description: "the owner's step-up (manage_organization)", example: stepUpExample });

export const transferSchema = z
  .object({ user_id: z.string({ error: "is required" }).max(64, "is not a user id"), ...stepUpFields })
  .refine(...notBoth)
  .openapi("OrganizationTransfer", { example: { user_id: "0b6f2a4e-8c1d-4f5e-9a7b-2c3d4e5f6a7b", ...stepUpExample } });

export const roleChangeSchema = z
  .object({
    role: z
      .string({ error: "is required" })
      .max(32, "is not a role of this service")
      .openapi({ description: "owner, admin, member, or a role ORG_ROLES defines", example: "admin" }),
  })
  .openapi("MemberRoleChange");

export const switchSchema = z
  .object({
    org_id: z
      .string({ error: "must be an organization id or null" })
      .max(64, "is not an organization id")
      .nullable()
      .openapi({ description: "the organization to act for; null: none" }),
  })
  .openapi("OrganizationSwitch", { example: { org_id: "5d2c6a0e-3b1f-4c8e-9f7a-1e2d3c4b5a69" } });

const cursor = z.string().max(200, "is not a valid cursor").optional();
const limit = z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(1, "at least 1").max(100, "at most 100").default(20);
export const pageQuerySchema = z.object({ cursor, limit });
