import { Hono } from "hono";
import { changePassword, listSessions, revokeOwnSession } from "../auth/sessions";
import { findUserById } from "../db/users";
import { deps } from "../deps";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import { requireAuth } from "../middleware/require-auth";
import { validate } from "../middleware/validate";
import { listSessionsQuerySchema, passwordChangeSchema, sessionIdSchema } from "../schemas";
import { page, timeIdCursor } from "./pagination";
import { publicUser, sessionShape } from "./shapes";

const authed = requireAuth();

export const account = new Hono<AppEnv>()
  // Answered from the verified token alone: no D1 on this path.
  .get("/protected", authed, (c) => {
    const { sub, username } = c.get("auth");
    return c.json({ message: `Hello, ${username}. Your access token is valid.`, user_id: sub, username });
  })
  .get("/me", authed, async (c) => {
    const user = await findUserById(deps(c).db, c.get("auth").sub);
    // A valid token for a deleted user is as good as an invalid token.
    if (!user) throw new ApiError("invalid_token", "The user behind this token no longer exists");
    return c.json({ user: publicUser(user) });
  })
  .post("/password", authed, jsonOnly, validate("json", passwordChangeSchema), async (c) => {
    const revoked = await changePassword(deps(c), c.get("auth"), c.req.valid("json"));
    return c.json({ message: "Password changed; every other session is logged out", sessions_revoked: revoked });
  })
  .get("/sessions", authed, validate("query", listSessionsQuerySchema), async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const claims = c.get("auth");
    const rows = await listSessions(deps(c), claims, limit + 1, cursor ? timeIdCursor(cursor) : undefined);
    const { items, next_cursor } = page(rows, limit, (s) => [s.createdAt.getTime(), s.id]);
    return c.json({ sessions: items.map((s) => sessionShape(s, claims.sid)), next_cursor });
  })
  .delete("/sessions/:id", authed, validate("param", sessionIdSchema), async (c) => {
    await revokeOwnSession(deps(c), c.get("auth"), c.req.valid("param").id);
    return c.json({ message: "Session revoked" });
  });
