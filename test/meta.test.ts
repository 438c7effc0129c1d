import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index";
import { SCALAR_PATH, SCALAR_SRI, SCALAR_VERSION } from "../src/routes/docs";
import { adminToken, call, expectError, PASSWORD, registerUser } from "./helpers";

describe("service routes", () => {
  it("GET / names the service and points at the docs", async () => {
    const res = await call("GET", "/");
    expect(res.status).toBe(200);
    expect(res.body.message).toMatch(/edge-auth-api.*\/docs/);
  });

  it("GET /health touches D1 and KV and answers ok", async () => {
    const res = await call("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok" });
  });

  it("GET /health answers 503 in the error shape when D1 is unreachable", async () => {
    const brokenDb = { prepare: () => ({ first: () => Promise.reject(new Error("D1 down")) }) };
    const res = await worker.fetch(new Request("http://localhost/health"), { ...env, DB: brokenDb as unknown as D1Database });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: "service_unavailable" });
  });

  it("GET /.well-known/jwks.json publishes the public key, cacheable", async () => {
    const res = await call("GET", "/.well-known/jwks.json");
    expect(res.status).toBe(200);
    expect(res.body.keys[0]).toMatchObject({ kid: "test-key-1", alg: "ES256", use: "sig", kty: "EC" });
    expect(res.text).not.toContain('"d"');
    expect(res.headers.get("cache-control")).toBe("public, max-age=600");
  });
});

afterEach(() => vi.restoreAllMocks());

describe("the tests' own configuration", () => {
  it("comes from wrangler.toml and test/vitest.config.ts, never a developer's .dev.vars", () => {
    // `npm run dev` writes API_DOCS='on', a signing key and a pepper of its own into .dev.vars.
    expect(env.API_DOCS).toBe("off");
    expect(env.PASSWORD_PEPPER).toBe("dGVzdC1wZXBwZXItMDEyMzQ1Njc4OWFiY2RlZjAxMjM");
    expect(JSON.parse(env.JWT_PRIVATE_KEY).kid).toBe("test-key-1");
  });
});

describe("errors", () => {
  it("answers 404 not_found in the error shape for an unknown path", async () => {
    expectError(await call("GET", "/nope"), 404, "not_found");
    // Under /admin the guard comes first: nothing there is even routed without an admin token.
    expectError(await call("POST", "/admin/nothing"), 401, "invalid_token");
    expectError(await call("GET", "/admin/nothing", { token: await adminToken() }), 404, "not_found");
  });

  it("answers 405 method_not_allowed with Allow for a known path and another method", async () => {
    const res = await call("GET", "/login");
    expectError(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toContain("POST");
    const del = await call("PUT", "/me");
    expectError(del, 405, "method_not_allowed");
    expect(del.headers.get("allow")).toContain("GET");
  });

  it("answers 500 internal_error without a stack and logs the config problem when a secret is missing", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await worker.fetch(
      new Request("http://localhost/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: "someone", password: "x1234567" }),
      }),
      { ...env, JWT_PRIVATE_KEY: "" },
    );
    expect(res.status).toBe(500);
    const body = await res.json<{ error: string; message: string }>();
    expect(body.error).toBe("internal_error");
    expect(JSON.stringify(body)).not.toMatch(/JWT_PRIVATE_KEY|at .*\.ts/);
    const line = JSON.parse(String(logged.mock.calls.at(-1)![0]));
    expect(line).toMatchObject({ event: "config_invalid", problems: [expect.stringMatching(/^JWT_PRIVATE_KEY: /)] });
  });

  it("reports a malformed JWT_PRIVATE_KEY as the config error that names it, on every route that signs or verifies", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const reg = await registerUser();
    for (const key of ["{not json", '{"kty":"EC"}', '{"keys":[]}', JSON.stringify({ ...JSON.parse(env.JWT_PRIVATE_KEY), x: "AAAA" })]) {
      for (const [path, init] of [
        ["/protected", { headers: { authorization: `Bearer ${reg.access_token}` } }],
        ["/.well-known/jwks.json", {}],
      ] as const) {
        const res = await worker.fetch(new Request(`http://localhost${path}`, init), { ...env, JWT_PRIVATE_KEY: key });
        expect(res.status, `${key} ${path}`).toBe(500);
        const line = JSON.parse(String(logged.mock.calls.at(-1)![0]));
        expect(line).toMatchObject({ event: "config_invalid", problems: [expect.stringMatching(/^JWT_PRIVATE_KEY: /)] });
      }
    }
  });

  it("treats a trailing slash as the same route, not a 405", async () => {
    const reg = await registerUser();
    const res = await call("POST", "/login/", { body: { username: reg.input.username, password: PASSWORD } });
    expect(res.status, res.text).toBe(200);
    expect((await call("GET", "/protected/", { token: reg.access_token })).status).toBe(200);
  });

  it("logs a failed D1 query without its bound parameters", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const failing = { prepare: () => ({ bind: () => failing.statement, ...failing.statement }), statement: {} as Record<string, () => Promise<never>> } as any;
    for (const m of ["all", "raw", "first", "run"]) failing.statement[m] = () => Promise.reject(new Error("D1_ERROR: no such table: users"));
    failing.batch = () => Promise.reject(new Error("D1_ERROR: no such table: users"));
    // Registration's first query is a single statement that binds the username.
    const req = new Request("http://localhost/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "Secret_Victim", password: "pw 12345678" }),
    });
    const res = await worker.fetch(req, { ...env, DB: failing });
    expect(res.status).toBe(500);
    const lines = logged.mock.calls.map((call) => String(call[0]));
    const line = lines.find((l) => l.includes("unhandled_error"))!;
    expect(line).toContain("params: [redacted]");
    expect(line).toContain("no such table");
    expect(line.toLowerCase()).not.toContain("secret_victim");
  });

  it("sets security headers and no X-Powered-By on every answer", async () => {
    for (const res of [await call("GET", "/"), await call("GET", "/nope"), await call("POST", "/login", { body: {} })]) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("strict-transport-security")).toMatch(/max-age=\d+/);
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(res.headers.get("x-powered-by")).toBeNull();
      expect(res.headers.get("x-request-id")).toMatch(/.+/);
      // Headers only an HTML document acts on are not sent with JSON (the docs page has them).
      expect(res.headers.get("x-xss-protection")).toBeNull();
    }
  });
});

describe("API reference", () => {
  const on = { bindings: { API_DOCS: "on" } as Partial<Env> };

  it("GET /docs serves the interactive reference with a CSP of its own: this origin's pinned Scalar file, with SRI, and nonced script", async () => {
    const res = await call("GET", "/docs", on);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy")!;
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(csp).toContain("default-src 'none'");
    // Nothing from another origin: the script, styles, fonts and calls are this API's own.
    expect(csp).toMatch(/script-src 'nonce-[^']+' 'self'(;|$)/);
    expect(csp).not.toMatch(/https?:/);
    expect(res.text).not.toMatch(/(src|href)="https?:/);
    expect(res.text).toMatch(new RegExp(`<script[^>]* src="${SCALAR_PATH}" integrity="${SCALAR_SRI.replace(/[+/]/g, "\\$&")}"`));
    expect(SCALAR_SRI).toMatch(/^sha384-[A-Za-z0-9+/=]{64}$/);
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    // Every script on the page carries the nonce, and the page reads this API's document.
    const scripts = [...res.text.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const tag of scripts) expect(tag).toContain(`nonce="${nonce}"`);
    expect(res.text).toContain("/openapi.json");
    // Scalar's servers are asked for nothing: no web fonts, no telemetry, no toolbar.
    expect(res.text).toMatch(/"withDefaultFonts": false/);
    expect(res.text).toMatch(/"telemetry": false/);
    // A fresh nonce per answer.
    expect((await call("GET", "/docs", on)).headers.get("content-security-policy")).not.toContain(nonce);
  });

  it("serves the pinned script from the Worker's static assets, cacheable for good, only while the reference is on", async () => {
    expect(SCALAR_PATH).toBe(`/docs/scalar-api-reference-${SCALAR_VERSION}.js`);
    const res = await call("GET", SCALAR_PATH, on);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.text.length).toBeGreaterThan(1_000_000); // the whole single-file build, not a stub
    // The browser checks the same hash (SRI) before it runs it.
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-384", new TextEncoder().encode(res.text)));
    expect(`sha384-${btoa(String.fromCharCode(...digest))}`).toBe(SCALAR_SRI);
    expectError(await call("GET", SCALAR_PATH), 404, "not_found");
  });

  it("keeps default-src 'none' everywhere else, /openapi.json included", async () => {
    for (const path of ["/", "/openapi.json", "/health"]) {
      const res = await call("GET", path);
      expect(res.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
    }
  });

  it("names the configured ISSUER as the server in /openapi.json, never the Host a client sent", async () => {
    for (const base of ["http://localhost", "https://evil.example"]) {
      const res = await call("GET", "/openapi.json", { base, headers: { host: "evil.example", "x-forwarded-host": "evil.example" } });
      expect(res.body.servers).toEqual([{ url: env.ISSUER }]);
    }
  });

  it("hides /docs with API_DOCS off, production's default; /openapi.json stays", async () => {
    expectError(await call("GET", "/docs"), 404, "not_found");
    expect((await call("GET", "/openapi.json")).status).toBe(200);
  });
});
