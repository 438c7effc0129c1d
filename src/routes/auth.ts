import { Hono } from "hono";
import { login, register } from "../auth/sessions";
import type { AppEnv } from "../config";
import { deps } from "../deps";
import { jsonOnly } from "../middleware/json-only";
import { validate } from "../middleware/validate";
import { loginSchema, registerSchema } from "../schemas";

export const auth = new Hono<AppEnv>()
  .post("/register", jsonOnly, validate("json", registerSchema), async (c) => {
    const result = await register(deps(c.env), c.req.valid("json"), c.req.header("user-agent"));
    return c.json(result, 201);
  })
  .post("/login", jsonOnly, validate("json", loginSchema), async (c) => {
    const result = await login(deps(c.env), c.req.valid("json"), c.req.header("user-agent"));
    return c.json(result);
  });
