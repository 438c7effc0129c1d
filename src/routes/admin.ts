import { Hono } from "hono";
import { toPublicUser } from "../auth/sessions";
import type { AppEnv } from "../config";
import { listAuditEvents } from "../db/audit";
import { listUsers } from "../db/users";
import { deps } from "../deps";
import { fromBase64Url, toBase64Url } from "../encoding";
import { ApiError } from "../errors";
import { requireAuth, requireRole } from "../middleware/require-auth";
import { validate } from "../middleware/validate";
import { listAuditQuerySchema, listUsersQuerySchema } from "../schemas";

// Cursors are opaque to clients: base64url of the last row's sort key.
const encodeCursor = (key: unknown[]) => toBase64Url(new TextEncoder().encode(JSON.stringify(key)));

function decodeCursor<T>(text: string, check: (key: unknown[]) => T | undefined): T {
  try {
    const key = JSON.parse(new TextDecoder().decode(fromBase64Url(text) ?? new Uint8Array()));
    const parsed = Array.isArray(key) ? check(key) : undefined;
    if (parsed !== undefined) return parsed;
  } catch {
    // fall through
  }
  throw new ApiError("validation_failed", undefined, { cursor: "is not a valid cursor" });
}

/** Reads one row more than asked, to know whether a next page exists. */
function page<T>(rows: T[], limit: number, keyOf: (last: T) => unknown[]) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}

const adminOnly = [requireAuth(), requireRole("admin")] as const;

export const admin = new Hono<AppEnv>()
  .get("/admin/users", ...adminOnly, validate("query", listUsersQuerySchema), async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const after = cursor
      ? decodeCursor(cursor, ([createdAt, id]) => (Number.isSafeInteger(createdAt) && typeof id === "string" ? { createdAt: createdAt as number, id } : undefined))
      : undefined;
    const rows = await listUsers(deps(c).db, limit + 1, after);
    const { items, next_cursor } = page(rows, limit, (u) => [u.createdAt.getTime(), u.id]);
    return c.json({ users: items.map(toPublicUser), next_cursor });
  })
  .get("/admin/audit", ...adminOnly, validate("query", listAuditQuerySchema), async (c) => {
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
