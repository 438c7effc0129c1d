import { Hono } from "hono";
import { changePassword, listSessions, revokeOwnSession, toPublicUser } from "../auth/sessions";
import type { AppEnv } from "../config";
import { findUserById } from "../db/users";
import { deps } from "../deps";
import { ApiError } from "../errors";
import { jsonOnly } from "../middleware/json-only";
import { enforceLimit } from "../middleware/rate-limit";
import { requireAuth } from "../middleware/require-auth";
import { validate } from "../middleware/validate";
import { passwordChangeSchema, sessionIdSchema } from "../schemas";

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
    return c.json({ user: toPublicUser(user) });
  })
  .post("/password", authed, jsonOnly, validate("json", passwordChangeSchema), async (c) => {
    // The current password can be guessed here as at /login: the same per-account budget.
    await enforceLimit(c, "LOGIN_USER_LIMITER", `user:${c.get("auth").username.toLowerCase()}`);
    const revoked = await changePassword(deps(c), c.get("auth"), c.req.valid("json"));
    return c.json({ message: "Password changed; every other session is logged out", sessions_revoked: revoked });
  })
  .get("/sessions", authed, async (c) => {
    return c.json({ sessions: await listSessions(deps(c), c.get("auth")) });
  })
  .delete("/sessions/:id", authed, validate("param", sessionIdSchema), async (c) => {
    await revokeOwnSession(deps(c), c.get("auth"), c.req.valid("param").id);
    return c.json({ message: "Session revoked" });
  });
