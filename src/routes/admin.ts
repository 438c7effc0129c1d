import { createRoute } from "@hono/zod-openapi";
import { listAuditEvents } from "../db/audit";
import { listUsers } from "../db/users";
import { deps } from "../deps";
import { requireRole } from "../middleware/require-auth";
import { auditPageSchema, listAuditQuerySchema, listUsersQuerySchema, usersPageSchema } from "../schemas";
import { BEARER, errors, json, openApiApp } from "./openapi";
import { decodeCursor, page, timeIdCursor } from "./pagination";
import { publicUser } from "./shapes";

const admin = { security: BEARER, tags: ["Admin"] };

const usersRoute = createRoute({
  ...admin,
  method: "get",
  path: "/users",
  summary: "Every user, newest first, a page at a time (role admin)",
  request: { query: listUsersQuerySchema },
  responses: { 200: json(usersPageSchema, "A page of users"), ...errors(400, 401, 403) },
});

const auditRoute = createRoute({
  ...admin,
  method: "get",
  path: "/audit",
  summary: "Security events, newest first, optionally one user's (role admin)",
  request: { query: listAuditQuerySchema },
  responses: { 200: json(auditPageSchema, "A page of events"), ...errors(400, 401, 403) },
});

/** Mounted at /admin. The guard covers the whole sub-app, so no admin route can be public by accident. */
export const adminApp = openApiApp();
adminApp.use(requireRole("admin"));
adminApp
  .openapi(usersRoute, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const rows = await listUsers(deps(c).db, limit + 1, cursor ? timeIdCursor(cursor) : undefined);
    const { items, next_cursor } = page(rows, limit, (u) => [u.createdAt.getTime(), u.id]);
    return c.json({ users: items.map(publicUser), next_cursor }, 200);
  })
  .openapi(auditRoute, async (c) => {
    const { user_id, cursor, limit } = c.req.valid("query");
    const beforeId = cursor ? decodeCursor(cursor, ([id]) => (Number.isSafeInteger(id) ? (id as number) : undefined)) : undefined;
    const rows = await listAuditEvents(deps(c).db, limit + 1, { userId: user_id, beforeId });
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
