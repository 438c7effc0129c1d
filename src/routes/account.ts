import { Hono } from "hono";
import { toPublicUser } from "../auth/sessions";
import type { AppEnv } from "../config";
import { findUserById } from "../db/users";
import { deps } from "../deps";
import { ApiError } from "../errors";
import { requireAuth } from "../middleware/require-auth";

const authed = requireAuth();

export const account = new Hono<AppEnv>()
  // Answered from the verified token alone: no D1 on this path.
  .get("/protected", authed, (c) => {
    const { sub, username } = c.get("auth");
    return c.json({ message: `Hello, ${username}. Your access token is valid.`, user_id: sub, username });
  })
  .get("/me", authed, async (c) => {
    const user = await findUserById(deps(c.env).db, c.get("auth").sub);
    // A valid token for a deleted user is as good as an invalid token.
    if (!user) throw new ApiError("invalid_token", "The user behind this token no longer exists");
    return c.json({ user: toPublicUser(user) });
  });
