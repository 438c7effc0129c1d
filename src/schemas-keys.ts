import { z } from "@hono/zod-openapi";
import { displayName, notBoth, stepUpExample, stepUpFields } from "./schemas";

/** API keys' requests (routes/api-keys.ts, docs/api-keys.md). */

const scope = z.string({ error: "must be a string" }).regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1-64 letters, digits or _.:-");
const orgId = z.string({ error: "must be a string" }).min(1, "is required").max(64, "is not an organization id");

export const keyCreateSchema = z
  .object({
    name: displayName, // shown in lists and in the mail its creation sends
    scopes: z.array(scope, { error: "must be a list of scopes" }).min(1, "at least one scope").max(64, "at most 64 scopes").openapi({
      description:
        "what the key may do: for a user's key, some of the user's roles; for an organization's, some of the permissions of the creator's role there",
    }),
    expires_in_days: z.number({ error: "must be a number" }).int("must be a whole number").min(1, "at least 1").max(3650, "at most 3650").optional(),
    org_id: orgId
      .optional()
      .openapi({ description: "the organization that owns the key (the creator's role needs keys:manage); absent: the caller's own key" }),
    ...stepUpFields,
  })
  .refine(...notBoth)
  .openapi("ApiKeyCreate", { example: { name: "CI deploys", scopes: ["user"], expires_in_days: 90, ...stepUpExample } });

export const keyListQuerySchema = z.object({
  org_id: orgId.optional().openapi({ description: "an organization's keys (the caller's role needs keys:read); absent: the caller's own" }),
});

export const keyIdParamSchema = z.object({
  id: z
    .string()
    .max(64, "is not a key id")
    .openapi({ param: { name: "id", in: "path" }, example: "Xq3v9JzK2mYb1T0cW7uA4g" }),
});
