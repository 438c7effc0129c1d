import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adminToken, call, documentedOperations, expectError, forgeToken, ORIGIN, PASSWORD, registerUser, uniqueName } from "./helpers";

afterEach(() => vi.restoreAllMocks());

describe("request bodies", () => {
  it("refuses a body over 16 KiB with 413 before parsing it, by Content-Length or by streaming", async () => {
    const big = JSON.stringify({ username: "x", password: "y".repeat(20_000) });
    expectError(await call("POST", "/login", { body: big }), 413, "payload_too_large");
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 40; i++) controller.enqueue(new TextEncoder().encode("a".repeat(1024)));
        controller.close();
      },
    });
    const res = await exports.default.fetch(
      new Request("http://localhost/login", { method: "POST", headers: { "content-type": "application/json" }, body: chunks, duplex: "half" } as RequestInit),
    );
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large" });
  });

  it("accepts JSON only: 415 for form, text or a body with no type", async () => {
    for (const type of ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", "application/jsonx"]) {
      expectError(await call("POST", "/register", { body: "username=a", headers: { "content-type": type } }), 415, "unsupported_media_type");
    }
    const untyped = await exports.default.fetch(new Request("http://localhost/login", { method: "POST", body: new Blob(['{"username":"a","password":"b"}']) }));
    expect(untyped.status).toBe(415);
    // application/json with a charset, and +json types, are JSON.
    const charset = await call("POST", "/login", {
      body: { username: uniqueName(), password: "wrong password 1" },
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expect(charset.status).toBe(401);
  });

  it("answers malformed JSON with 400 invalid_request", async () => {
    for (const body of ['{"username":', "{'a':1}", "\u0000", '{"a":1}}', "NaN"]) {
      expectError(await call("POST", "/login", { body }), 400, "invalid_request");
    }
  });

  it("survives deeply nested JSON without a 500", async () => {
    const deep = "[".repeat(8000) + "]".repeat(8000);
    const res = await call("POST", "/login", { body: deep });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it("ignores unknown fields and never mass-assigns them, __proto__ included", async () => {
    const body = JSON.parse(
      `{"username":"${uniqueName()}","password":"${PASSWORD}","roles":["admin"],"id":"mine","failed_logins":-100,"locked_until":0,"__proto__":{"roles":["admin"]}}`,
    );
    const res = await call("POST", "/register", { body });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user.roles).toEqual(["user"]);
    const row = await env.DB.prepare("SELECT roles, failed_logins FROM users WHERE id = ?")
      .bind(res.body.user.id)
      .first<{ roles: string; failed_logins: number }>();
    expect(row).toEqual({ roles: '["user"]', failed_logins: 0 });
  });

  it("rejects over-long strings and control characters in every field", async () => {
    const cases = [
      { username: "bad\u0000name", password: PASSWORD },
      { username: "name\nline", password: PASSWORD },
      { username: uniqueName(), password: "pass\u0007word1" },
      { username: uniqueName(), password: "pass\u009bword1" },
      { username: uniqueName(), email: "a\r\n@example.com", password: PASSWORD },
      { username: uniqueName(), email: `${"a".repeat(250)}@example.com`, password: PASSWORD },
    ];
    for (const body of cases) expectError(await call("POST", "/register", { body }), 400, "validation_failed");
    expectError(await call("POST", "/login", { body: { username: "x\u0000", password: PASSWORD } }), 400, "validation_failed");
    expectError(await call("POST", "/login", { body: { username: "x".repeat(255), password: PASSWORD } }), 400, "validation_failed");
  });

  it("rejects wrongly typed fields with 400 validation_failed", async () => {
    for (const body of [
      { username: ["a"], password: PASSWORD },
      { username: "abc", password: 12345678 },
      { username: null, password: null },
      { username: "abc", password: PASSWORD, use_cookie: "yes" },
    ]) {
      expectError(await call("POST", "/register", { body }), 400, "validation_failed");
    }
  });
});

describe("headers", () => {
  it("handles junk and huge Authorization values without a 500", async () => {
    const cases: [string, number][] = [
      [`Bearer ${"a".repeat(10_000)}`, 401],
      ["Bearer \u00e9\u00e9\u00e9", 400],
      ["Bearer a b", 400],
      ["Bearer    ", 400],
      ["Basic Zm9vOmJhcg==", 400],
      ["bearer", 400],
      ["", 401],
    ];
    for (const [authorization, status] of cases) {
      const res = await exports.default.fetch(new Request("http://localhost/me", { headers: { authorization } }));
      expect(res.status, authorization.slice(0, 20)).toBe(status);
      expect((await res.json<{ error: string }>()).error).toMatch(/^invalid_(token|request)$/);
    }
  });

  it("refuses a bearer token over 4 KiB before any signature check", async () => {
    const verify = vi.spyOn(crypto.subtle, "verify");
    const valid = await forgeToken();
    expect((await call("GET", "/protected", { token: valid })).status).toBe(200);
    expect(verify).toHaveBeenCalledTimes(1);
    verify.mockClear();
    const padded = valid + "A".repeat(4200); // a well-formed token with a huge signature part
    expectError(await call("GET", "/protected", { token: padded }), 401, "invalid_token");
    expect(verify).not.toHaveBeenCalled();
  });

  it("ignores a client-sent X-Request-Id and answers with its own", async () => {
    const res = await call("GET", "/", { headers: { "x-request-id": "forged-id-123" } });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("accepts JSON only on every operation /openapi.json gives a JSON body (/password too): 415 for a text body, with the credential it asks for", async () => {
    const user = await registerUser();
    const admin = await adminToken();
    const withBody = (await documentedOperations()).filter((op) => op.requestBody?.content["application/json"]);
    expect(withBody.length).toBeGreaterThan(20);
    for (const op of withBody) {
      const path = op.template.replace(/\{[^}]+\}/g, "x");
      const token = op.template.startsWith("/admin") ? admin : user.access_token;
      const res = await call(op.method, path, { token, body: '{"a":1}', headers: { "content-type": "text/plain", origin: ORIGIN } });
      expect(res.status, `${op.method} ${op.template}: ${res.text}`).toBe(415);
      expectError(res, 415, "unsupported_media_type");
    }
  });

  it("answers methods not allowed in the error shape, with Allow naming exactly the documented ones: every path of /openapi.json, every method it lacks", async () => {
    const operations = await documentedOperations();
    const paths = [...new Set(operations.map((op) => op.template))];
    const admin = await adminToken(); // all of /admin is behind its guard, whatever the method (admin.test.ts)
    expect(paths.length).toBeGreaterThan(30);
    let refused = 0;
    for (const template of paths) {
      const documented = operations.filter((op) => op.template === template).map((op) => op.method);
      const allow = [...documented, ...(documented.includes("GET") ? ["HEAD"] : []), "OPTIONS"];
      for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE"].filter((m) => !documented.includes(m))) {
        const res = await call(method, template.replace(/\{[^}]+\}/g, "x"), template.startsWith("/admin") ? { token: admin } : {});
        expect(res.status, `${method} ${template}`).toBe(405);
        expectError(res, 405, "method_not_allowed");
        expect(res.headers.get("allow")!.split(", ").sort(), `${method} ${template}`).toEqual(allow.sort());
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });

  it("puts Cache-Control: no-store on every answer that carries a token, and secure headers everywhere", async () => {
    const reg = await registerUser();
    const answers = [
      await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } }),
      await call("POST", "/refresh", { body: { refresh_token: reg.refresh_token } }),
      await call("GET", "/me", { token: reg.access_token }),
      await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" } }),
    ];
    for (const res of answers) {
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("strict-transport-security")).toContain("max-age=31536000");
      expect(res.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(res.headers.get("x-powered-by")).toBeNull();
    }
  });
});
