import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, registerUser } from "./helpers";

describe("GET /protected", () => {
  it("answers 200 with the caller's id and username for a valid token", async () => {
    const reg = await registerUser();
    const res = await call("GET", "/protected", { token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ message: expect.any(String), user_id: reg.user.id, username: reg.input.username });
  });

  it("answers 401 with an RFC 6750 challenge when the token is missing", async () => {
    const res = await call("GET", "/protected");
    expectError(res, 401, "invalid_token");
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="edge-auth-api"');
  });

  it("answers 401 invalid_token with error=invalid_token for a bad or tampered token", async () => {
    const reg = await registerUser();
    for (const token of ["not.a.jwt", `${reg.access_token.slice(0, -4)}AAAA`, reg.refresh_token, "x".repeat(5000)]) {
      const res = await call("GET", "/protected", { token });
      expectError(res, 401, "invalid_token");
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="edge-auth-api", error="invalid_token"/);
    }
  });

  it("answers 400 invalid_request for an Authorization header that is not a Bearer token", async () => {
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer two words", "Bearer <script>"]) {
      const res = await call("GET", "/protected", { headers: { authorization } });
      expectError(res, 400, "invalid_request");
      expect(res.headers.get("www-authenticate")).toContain('error="invalid_request"');
    }
  });

  it("accepts the scheme name in any case", async () => {
    const reg = await registerUser();
    const res = await call("GET", "/protected", { headers: { authorization: `bearer ${reg.access_token}` } });
    expect(res.status).toBe(200);
  });
});

describe("GET /me", () => {
  it("answers the caller's user record without any secret", async () => {
    const reg = await registerUser({ email: "me-test@example.com" });
    const res = await call("GET", "/me", { token: reg.access_token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user: reg.user, factors: { totp: false, recovery_codes_left: 0, passkeys: 0 } });
    expect(res.text).not.toMatch(/hash|pbkdf2|secret/i);
  });

  it("answers 401 without a token, and 401 when the user no longer exists", async () => {
    expectError(await call("GET", "/me"), 401, "invalid_token");
    const reg = await registerUser();
    await env.DB.prepare("DELETE FROM users WHERE id = ?").bind(reg.user.id).run();
    const gone = await call("GET", "/me", { token: reg.access_token });
    expectError(gone, 401, "invalid_token");
    expect(gone.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });
});
