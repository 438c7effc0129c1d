import { OpenAPIHono } from "@hono/zod-openapi";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { AREAS, areasFor, wholeApp } from "../../src/app";

// wrangler.toml's vars, as the app's config checks them; the document itself needs no binding.
const { vars } = unstable_readConfig({ config: "wrangler.toml" });
const env = { ...vars, ISSUER: "http://localhost:8787", JWT_WRAPPING_KEY: "A".repeat(43) };

/** GET /openapi.json, as the app serves it. */
async function served() {
  const res = await (await wholeApp()).request("/openapi.json", {}, env);
  expect(res.status).toBe(200);
  return res.json<{
    openapi: string;
    paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>;
    components: { securitySchemes: object; schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }> };
  }>();
}

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const doc = await served();
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("documents every route the app serves, and no route it does not", async () => {
    const doc = await served();
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    const routes = (await wholeApp()).routes
      .filter((r) => r.method !== "ALL" && r.path !== "/*") // middleware, on every path or per method
      .map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, "{$1}")}`);
    expect([...new Set(routes)].sort()).toEqual([...new Set(documented)].sort());
  });

  it("documents the error shape with its codes, both security schemes, and the headers that matter", async () => {
    const doc = await served();
    expect(doc.components.schemas.Error!.properties!.error!.enum).toEqual(
      expect.arrayContaining(["invalid_token", "validation_failed", "rate_limited", "service_unavailable"]),
    );
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["bearerAuth", "refreshCookie"]);
    const login = doc.paths["/login"]!.post!.responses as Record<string, { headers?: Record<string, unknown> }>;
    expect(Object.keys(login["429"]!.headers!)).toContain("Retry-After");
    expect(Object.keys(login["401"]!.headers!)).toContain("WWW-Authenticate");
    expect(Object.keys(login["200"]!.headers!)).toContain("Set-Cookie");
    expect(doc.paths["/me"]!.get!.security).toEqual([{ bearerAuth: [] }]);
  });
});

describe("the areas of src/app.ts, each loaded at the first request that may need it", () => {
  it("has every route under one of its own area's paths, so a request loads every area that could answer it", async () => {
    let checked = 0;
    for (const area of AREAS) {
      const alone = new OpenAPIHono();
      (await area.load())(alone as never);
      expect(alone.routes.length).toBeGreaterThan(0);
      for (const r of alone.routes) {
        // A parameter or wildcard stands for any segment: the literal segments before it decide.
        const path = r.path.replace(/:[^/]+/g, "x").replace(/\/\*$/, "/x");
        expect(areasFor(path), `${r.method} ${r.path}`).toContain(area);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(90);
  });

  it("loads nothing for a path no route is under, and everything for the document", () => {
    expect(areasFor("/nowhere")).toEqual([]);
    expect(areasFor("/openapi.json")).toEqual(AREAS);
  });
});
