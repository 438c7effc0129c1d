import { Hono } from "hono";
import { toPublicUser } from "../auth/sessions";
import type { AppEnv } from "../config";
import { listUsers, type UserCursor } from "../db/users";
import { deps } from "../deps";
import { fromBase64Url, toBase64Url } from "../encoding";
import { ApiError } from "../errors";
import { requireAuth, requireRole } from "../middleware/require-auth";
import { validate } from "../middleware/validate";
import { listUsersQuerySchema } from "../schemas";

// Cursors are opaque to clients: base64url of the last row's (created_at, id).
const encodeCursor = (cur: UserCursor) => toBase64Url(new TextEncoder().encode(JSON.stringify([cur.createdAt, cur.id])));

function decodeCursor(text: string): UserCursor {
  try {
    const [createdAt, id] = JSON.parse(new TextDecoder().decode(fromBase64Url(text) ?? new Uint8Array())) as unknown[];
    if (Number.isSafeInteger(createdAt) && typeof id === "string") return { createdAt: createdAt as number, id };
  } catch {
    // fall through
  }
  throw new ApiError("validation_failed", undefined, { cursor: "is not a valid cursor" });
}

const adminOnly = [requireAuth(), requireRole("admin")] as const;

export const admin = new Hono<AppEnv>()
  .get("/admin/users", ...adminOnly, validate("query", listUsersQuerySchema), async (c) => {
    const { cursor, limit } = c.req.valid("query");
    // One extra row tells whether there is a next page.
    const rows = await listUsers(deps(c).db, limit + 1, cursor ? decodeCursor(cursor) : undefined);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const next_cursor = rows.length > limit && last ? encodeCursor({ createdAt: last.createdAt.getTime(), id: last.id }) : null;
    return c.json({ users: page.map(toPublicUser), next_cursor });
  });
