import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { adminOrganizationPage } from "../auth/organizations/organizations";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { adminOrganizationsPageSchema } from "../response-schemas-orgs";
import { pageQuerySchema } from "../schemas-orgs";
import { deps } from "./deps";
import { BEARER, errors, json, openApiApp } from "./openapi";
import { page, timeIdCursor } from "./pagination";

const listRoute = createRoute({
  security: BEARER,
  tags: ["Admin"],
  method: "get",
  path: "/organizations",
  summary: "Every organization with its member count, newest first, a page at a time (role admin)",
  request: { query: pageQuerySchema },
  responses: {
    200: json(adminOrganizationsPageSchema, "A page of organizations"),
    ...errors("invalid_request", "validation_failed", "invalid_token", "forbidden"),
  },
});

/** A belt under the admin guard (routes/admin.ts's requireRole covers every /admin path), as routes/admin-clients.ts has. */
const verifiedAdmin = createMiddleware<AppEnv>(async function verifiedAdmin(c, next) {
  if (!c.get("auth")?.roles.includes("admin")) throw new ApiError("forbidden", "Requires the admin role");
  await next();
});

/** Mounted at /admin after routes/admin.ts's adminApp (src/app.ts). */
export const adminOrganizations = openApiApp();
adminOrganizations.use("/organizations", verifiedAdmin);
adminOrganizations.openapi(listRoute, async (c) => {
  const { cursor, limit } = c.req.valid("query");
  const rows = await adminOrganizationPage(deps(c), limit + 1, cursor ? timeIdCursor(cursor) : undefined);
  const { items, next_cursor } = page(rows, limit, (o) => [o.createdAt.getTime(), o.id]);
  const organizations = items.map((o) => ({ id: o.id, name: o.name, slug: o.slug, created_at: o.createdAt.toISOString(), members: o.members }));
  return c.json({ organizations, next_cursor }, 200);
});
