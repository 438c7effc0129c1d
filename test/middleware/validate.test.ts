import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/env";
import { onError } from "../../src/errors";
import { validationHook } from "../../src/middleware/validate";

// A route validated the way every route is (the app's defaultHook).
const schema = z.object({
  name: z
    .string()
    .min(3, "too short")
    .regex(/^[a-z]+$/, "lowercase letters only"),
  nested: z.object({ n: z.number("a number") }),
});
const route = createRoute({
  method: "post",
  path: "/",
  request: { body: { content: { "application/json": { schema } }, required: true } },
  responses: { 200: { description: "ok" } },
});
const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
app.openapi(route, (c) => c.json(c.req.valid("json"), 200));
app.onError(onError);
const post = (body: string) => app.request("/", { method: "POST", body, headers: { "content-type": "application/json" } });

describe("validationHook", () => {
  it("passes a valid body to the route", async () => {
    const res = await post('{"name":"abc","nested":{"n":1}}');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "abc", nested: { n: 1 } });
  });

  it("answers 400 validation_failed with the first message per field, by its dotted path, never zod's raw error", async () => {
    const res = await post('{"name":"AB","nested":{"n":"x"}}');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "validation_failed",
      message: expect.any(String),
      fields: { name: "too short", "nested.n": "a number" },
    });
  });

  it("names the body itself `_` when it is not an object", async () => {
    const res = await post("[1,2]");
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "validation_failed", fields: { _: expect.any(String) } });
  });

  it("leaves malformed JSON to Hono's 400, answered as invalid_request", async () => {
    const res = await post('{"name":');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_request" });
  });
});
