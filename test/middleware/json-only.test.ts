import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/env";
import { onError } from "../../src/errors";
import { jsonOnly } from "../../src/middleware/json-only";

// Behind the middleware, a route that answers the JSON body it reads.
const app = new Hono<AppEnv>().post("/", jsonOnly, async (c) => c.json({ read: await c.req.json() }));
app.onError(onError);
const post = (body: BodyInit | undefined, headers: Record<string, string> = {}) => app.request("/", { method: "POST", body, headers });

describe("jsonOnly", () => {
  it("lets JSON through: application/json, with a charset, or any +json type", async () => {
    for (const type of ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"]) {
      const res = await post('{"a":1}', { "content-type": type });
      expect(res.status, type).toBe(200);
      expect(await res.json()).toEqual({ read: { a: 1 } });
    }
  });

  it("refuses a body of any other type, or of none, with 415 unsupported_media_type before the route reads it", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "json"]) {
      const res = await post('{"a":1}', { "content-type": type });
      expect(res.status, type).toBe(415);
      expect(await res.json()).toMatchObject({ error: "unsupported_media_type" });
    }
    const untyped = await post(new Blob(['{"a":1}']));
    expect(untyped.status).toBe(415);
  });

  it("refuses a wrong type even without a body", async () => {
    expect((await post(undefined, { "content-type": "text/plain" })).status).toBe(415);
  });

  it("reads a bodyless request that says JSON as {} (HTTP clients send a bodyless POST that way)", async () => {
    for (const [body, headers] of [
      [undefined, { "content-type": "application/json" }],
      ["", { "content-type": "application/json", "content-length": "0" }],
    ] as const) {
      const res = await post(body, headers);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ read: {} });
    }
  });
});
