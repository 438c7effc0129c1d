import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AppEnv } from "../../src/env";
import { ApiError, onError } from "../../src/errors";
import { everyAnswer } from "../../src/middleware/every-answer";

const app = new Hono<AppEnv>();
app.use(everyAnswer);
app.get("/", (c) => c.json({ requestId: c.get("requestId") }));
app.get("/cached", (c) => c.json({}, 200, { "Cache-Control": "public, max-age=300" }));
app.get("/refused", () => {
  throw new ApiError("forbidden");
});
app.onError(onError);
const get = (path: string, headers: Record<string, string> = {}, vars: Partial<Env> = {}) => app.request(path, { headers }, { ...env, ...vars });

afterEach(() => vi.restoreAllMocks());

describe("everyAnswer", () => {
  it("gives each request its own id, in c.var.requestId and X-Request-Id, and ignores one the client sends", async () => {
    const a = await get("/", { "x-request-id": "forged-id-123" });
    const b = await get("/");
    const id = a.headers.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await a.json()).toEqual({ requestId: id });
    expect(b.headers.get("x-request-id")).not.toBe(id);
  });

  it("marks answers no-store, error answers too, unless the route set its own caching", async () => {
    expect((await get("/")).headers.get("cache-control")).toBe("no-store");
    const refused = await get("/refused");
    expect(refused.status).toBe(403);
    expect(refused.headers.get("cache-control")).toBe("no-store");
    expect(refused.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect((await get("/cached")).headers.get("cache-control")).toBe("public, max-age=300");
  });

  it("logs one line per request only with LOG_REQUESTS = on: method, path without the query, status, the request's id", async () => {
    const lines = vi.spyOn(console, "log");
    await get("/refused?cursor=secret", {}, { LOG_REQUESTS: "off" });
    expect(lines).not.toHaveBeenCalled();
    const res = await get("/refused?cursor=secret", {}, { LOG_REQUESTS: "on" });
    expect(lines).toHaveBeenCalledTimes(1);
    const line = JSON.parse(String(lines.mock.calls[0]![0]));
    expect(line).toMatchObject({ event: "request", method: "GET", path: "/refused", status: 403, request_id: res.headers.get("x-request-id") });
    expect(JSON.stringify(line)).not.toContain("secret");
  });
});
