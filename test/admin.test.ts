import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../src/env";
import { onError } from "../src/errors";
import { requireRole } from "../src/middleware/require-auth";
import { adminToken, call, expectError, registerUser } from "./helpers";

describe("the admin area", () => {
  it("guards every route under /admin with authentication and the admin role", async () => {
    const user = await registerUser();
    for (const path of ["/admin/users", "/admin/audit", "/admin/anything"]) {
      expectError(await call("GET", path), 401, "invalid_token");
      expectError(await call("GET", path, { token: user.access_token }), 403, "forbidden");
    }
  });

  it("requireRole cannot run without authentication: on its own it still demands a token", async () => {
    const app = new Hono<AppEnv>().get("/x", requireRole("admin"), (c) => c.text("in")).onError(onError);
    const res = await app.fetch(new Request("http://localhost/x"), env);
    expect(res.status).toBe(401);
  });
});

describe("GET /admin/users", () => {
  it("answers 401 without a token and 403 forbidden for a plain user", async () => {
    expectError(await call("GET", "/admin/users"), 401, "invalid_token");
    const user = await registerUser();
    expectError(await call("GET", "/admin/users", { token: user.access_token }), 403, "forbidden");
  });

  it("walks every user exactly once, newest first, with an opaque cursor", async () => {
    const token = await adminToken();
    for (let i = 0; i < 5; i++) await registerUser();
    const all = await call("GET", "/admin/users?limit=100", { token });
    expect(all.status).toBe(200);
    expect(all.body.next_cursor).toBeNull();
    const total = all.body.users.length;
    expect(total).toBeGreaterThanOrEqual(6);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: any = await call("GET", `/admin/users?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token });
      expect(res.status, res.text).toBe(200);
      expect(res.body.users.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.users.map((u: { id: string }) => u.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor && pages < 50);
    expect(seen).toEqual(all.body.users.map((u: { id: string }) => u.id));
    const created = all.body.users.map((u: { created_at: string }) => u.created_at);
    expect([...created].sort().reverse()).toEqual(created);
    expect(all.text).not.toMatch(/hash|pbkdf2/i);
  });

  it("answers 400 validation_failed for a bad cursor or limit", async () => {
    const token = await adminToken();
    // The last cursor decodes to a time no Date can hold: 400, not an empty page.
    const farFuture = btoa(JSON.stringify([9007199254740991, "x"])).replace(/=+$/, "");
    for (const q of ["cursor=garbage", "cursor=WzEsMl0", "limit=0", "limit=101", "limit=abc", `cursor=${farFuture}`]) {
      const res = await call("GET", `/admin/users?${q}`, { token });
      expectError(res, 400, "validation_failed");
    }
  });
});
