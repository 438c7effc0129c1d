import { Hono } from "hono";
import { listAuditEvents } from "../db/audit";
import { listUsers } from "../db/users";
import { deps } from "../deps";
import type { AppEnv } from "../env";
import { requireRole } from "../middleware/require-auth";
import { validate } from "../middleware/validate";
import { listAuditQuerySchema, listUsersQuerySchema } from "../schemas";
import { decodeCursor, page, timeIdCursor } from "./pagination";
import { publicUser } from "./shapes";

/** Mounted at /admin. The guard covers the whole sub-app, so no admin route can be public by accident. */
export const admin = new Hono<AppEnv>()
  .use(requireRole("admin"))
  .get("/users", validate("query", listUsersQuerySchema), async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const rows = await listUsers(deps(c).db, limit + 1, cursor ? timeIdCursor(cursor) : undefined);
    const { items, next_cursor } = page(rows, limit, (u) => [u.createdAt.getTime(), u.id]);
    return c.json({ users: items.map(publicUser), next_cursor });
  })
  .get("/audit", validate("query", listAuditQuerySchema), async (c) => {
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
    return c.json({ events, next_cursor });
  });
