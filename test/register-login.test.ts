import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hashPassword } from "../src/auth/core/passwords";
import { call, decodeJwtPart, expectError, PASSWORD, registerUser, uniqueName } from "./helpers";

afterEach(() => vi.restoreAllMocks());

describe("POST /register", () => {
  it("creates a user and a session, answers 201 with both tokens and no secret", async () => {
    const username = uniqueName("Reg");
    const res = await call("POST", "/register", { body: { username, email: `${username}@Example.COM`, password: PASSWORD } });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ token_type: "Bearer", expires_in: 900, access_token: expect.any(String), refresh_token: expect.any(String) });
    expect(res.body.user).toEqual({
      id: expect.any(String),
      username,
      email: `${username.toLowerCase()}@example.com`,
      email_verified: false,
      roles: ["user"],
      created_at: expect.any(String),
    });
    expect(new Date(res.body.user.created_at).toISOString()).toBe(res.body.user.created_at);
    expect(res.text).not.toMatch(/pbkdf2|password/i);
    expect(res.headers.get("cache-control")).toBe("no-store");
    // The refresh token is 256 random bits and only its hash is stored.
    expect(res.body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await env.DB.prepare("SELECT refresh_token_hash FROM sessions WHERE user_id = ?")
      .bind(res.body.user.id)
      .first<{ refresh_token_hash: string }>();
    expect(row!.refresh_token_hash).not.toBe(res.body.refresh_token);
    expect(decodeJwtPart(res.body.access_token, 1)).toMatchObject({ sub: res.body.user.id, roles: ["user"] });
  });

  it("gives ids that are opaque, not sequential", async () => {
    const a = await registerUser();
    const b = await registerUser();
    expect(a.user.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.user.id).not.toBe(b.user.id);
  });

  it("never lets a client set its own roles or id", async () => {
    const res = await registerUser({ roles: ["admin"], id: "chosen-id", passwordHash: "x" });
    expect(res.user.roles).toEqual(["user"]);
    expect(res.user.id).not.toBe("chosen-id");
  });

  it("answers 409 username_taken regardless of case", async () => {
    const first = await registerUser();
    const res = await call("POST", "/register", { body: { username: first.input.username.toUpperCase(), password: PASSWORD } });
    expectError(res, 409, "username_taken");
  });

  it("answers 409 email_taken regardless of case", async () => {
    const email = `${uniqueName("mail")}@example.com`;
    await registerUser({ email });
    const res = await call("POST", "/register", { body: { username: uniqueName(), email: email.toUpperCase(), password: PASSWORD } });
    expectError(res, 409, "email_taken");
  });

  it("lets exactly one of many concurrent registrations of one username win; the rest get 409, none 500", async () => {
    const username = uniqueName("race");
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call("POST", "/register", { body: { username: i % 2 ? username : username.toUpperCase(), password: PASSWORD } })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of results.filter((r) => r.status === 409)) expectError(r, 409, "username_taken");
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM users WHERE lower(username) = ?").bind(username.toLowerCase()).first<{ n: number }>())!;
    expect(n).toBe(1);
  });

  it.each([
    [{ username: "ab", password: PASSWORD }, "username"],
    [{ username: "has space", password: PASSWORD }, "username"],
    [{ username: "x".repeat(33), password: PASSWORD }, "username"],
    [{ username: "okname", password: "short1" }, "password"],
    [{ username: "okname", password: "a1".repeat(65) }, "password"],
    [{ username: "okname", password: "tab\there1x" }, "password"],
    [{ username: "okname", email: "not-an-email", password: PASSWORD }, "email"],
    [{ password: PASSWORD }, "email"], // neither a username nor an address (issue 31: the username is optional)
    [{ username: 42, password: PASSWORD }, "username"],
  ])("answers 400 validation_failed with fields for %j", async (body, field) => {
    const res = await call("POST", "/register", { body });
    expectError(res, 400, "validation_failed");
    expect(res.body.fields).toHaveProperty(field);
  });

  it("accepts any Unicode in a password, with no composition rule (length is the rule: docs/passwords.md)", async () => {
    await registerUser({ password: "пароль١٢٣٤" });
    await registerUser({ password: "nodigitshere" });
    await registerUser({ password: "90817263544" });
  });

  it("answers 400 invalid_request for malformed JSON, 415 for a non-JSON body, 413 for a huge one", async () => {
    expectError(await call("POST", "/register", { body: '{"username": "abc", ' }), 400, "invalid_request");
    expectError(
      await call("POST", "/register", { body: "username=abc", headers: { "content-type": "application/x-www-form-urlencoded" } }),
      415,
      "unsupported_media_type",
    );
    expectError(await call("POST", "/register", { body: JSON.stringify({ username: "a".repeat(20_000) }) }), 413, "payload_too_large");
    expectError(await call("POST", "/register", { body: "[1,2]" }), 400, "validation_failed");
    expectError(await call("POST", "/register", { body: "null" }), 400, "validation_failed");
  });
});

describe("POST /login", () => {
  it("logs in by username (any case) and by email, with a fresh session each time", async () => {
    const email = `${uniqueName("login")}@example.com`;
    const reg = await registerUser({ email });
    const byName = await call("POST", "/login", { body: { username: reg.input.username.toUpperCase(), password: PASSWORD } });
    expect(byName.status, byName.text).toBe(200);
    expect(byName.body).toMatchObject({ user: { id: reg.user.id }, token_type: "Bearer", expires_in: 900 });
    const byEmail = await call("POST", "/login", { body: { username: email.toUpperCase(), password: PASSWORD } });
    expect(byEmail.status).toBe(200);
    expect(byEmail.body.refresh_token).not.toBe(byName.body.refresh_token);
    const sids = [reg, byName.body, byEmail.body].map((r) => decodeJwtPart(r.access_token, 1).sid);
    expect(new Set(sids).size).toBe(3);
  });

  it("answers a byte-identical 401 for an unknown user and for a wrong password", async () => {
    const reg = await registerUser();
    const wrong = await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" } });
    const unknown = await call("POST", "/login", { body: { username: uniqueName("ghost"), password: "wrong password 1" } });
    expectError(wrong, 401, "invalid_credentials");
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.text).toBe(wrong.text);
  });

  it("spends one PBKDF2 derivation for an unknown user, as for a wrong password (no timing oracle)", async () => {
    const reg = await registerUser();
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" } });
    expect(derive).toHaveBeenCalledTimes(1);
    derive.mockClear();
    await call("POST", "/login", { body: { username: uniqueName("ghost"), password: "wrong password 1" } });
    await call("POST", "/login", { body: { username: "ghost@example.com", password: "wrong password 1" } });
    expect(derive).toHaveBeenCalledTimes(2);
    const [[algorithm]] = derive.mock.calls as unknown as [[{ iterations: number }]];
    expect(algorithm.iterations).toBe(100_000);
  });

  it("answers 400 validation_failed for missing or oversized fields", async () => {
    expectError(await call("POST", "/login", { body: { username: "someone" } }), 400, "validation_failed");
    expectError(await call("POST", "/login", { body: { username: "someone", password: "x".repeat(129) } }), 400, "validation_failed");
  });

  it("rehashes a password stored with old parameters on a successful login", async () => {
    const reg = await registerUser();
    const old = await hashPassword(PASSWORD, { iterations: 20_000 }); // older cost, no pepper
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?").bind(old, reg.user.id).run();
    const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    expect(res.status).toBe(200);
    const row = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(reg.user.id).first<{ password_hash: string }>();
    expect(row!.password_hash).toMatch(/^\$pbkdf2-sha256\$i=100000,p=1,k=[A-Za-z0-9_-]{8}\$/);
    expect((await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } })).status).toBe(200);
  });
});
