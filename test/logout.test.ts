import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { call, decodeJwtPart, expectError, login, nowSeconds, PASSWORD, refreshWith, registerUser, revokedEntries, sidOf, userWithTotp } from "./helpers";

describe("POST /logout", () => {
  it("kills this access token and this session's refresh token; other sessions live on", async () => {
    const reg = await registerUser();
    const other = await login(reg.input.username);
    const res = await call("POST", "/logout", { token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ message: expect.any(String) });

    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expect((await call("GET", "/protected", { token: other.body.access_token })).status).toBe(200);
    expect((await refreshWith(other.body.refresh_token)).status).toBe(200);
  });

  it("also kills the session's earlier access tokens (the session id is revoked too)", async () => {
    const reg = await registerUser();
    const rotated = await refreshWith(reg.refresh_token);
    await call("POST", "/logout", { token: rotated.body.access_token });
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
  });

  it("revokes the session id in KV, for at least 60 s and at most the token's remaining life + 60 s", async () => {
    const reg = await registerUser();
    const { exp, sid } = decodeJwtPart(reg.access_token, 1) as { exp: number; sid: string };
    await call("POST", "/logout", { token: reg.access_token });
    const ttl = (await revokedEntries("sid:")).get(sid)! - nowSeconds();
    expect(ttl).toBeGreaterThanOrEqual(59);
    expect(ttl).toBeLessThanOrEqual(exp - nowSeconds() + 60);
  });

  it("keeps KV's 60 s floor for a session whose tokens are about to expire (a shorter TTL would make KV refuse the write)", async () => {
    const reg = await registerUser();
    await env.DB.prepare("UPDATE sessions SET access_expires_at = ? WHERE id = ?")
      .bind(Date.now() + 5000, sidOf(reg.access_token))
      .run();
    const res = await call("POST", "/logout", { token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    const ttl = (await revokedEntries("sid:")).get(sidOf(reg.access_token))! - nowSeconds();
    expect(ttl).toBeGreaterThanOrEqual(59);
    expect(ttl).toBeLessThanOrEqual(65);
  });

  it("answers 401 without a token, or with a token already logged out", async () => {
    expectError(await call("POST", "/logout"), 401, "invalid_token");
    const reg = await registerUser();
    await call("POST", "/logout", { token: reg.access_token });
    expectError(await call("POST", "/logout", { token: reg.access_token }), 401, "invalid_token");
  });
});

describe("POST /logout/all", () => {
  it("kills every session of the user: their access and refresh tokens", async () => {
    const reg = await registerUser();
    const phone = await login(reg.input.username);
    const laptop = await login(reg.input.username);
    const stranger = await registerUser();
    const res = await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: phone.body.access_token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.sessions_revoked).toBe(3);

    for (const s of [reg, phone.body, laptop.body]) {
      expectError(await call("GET", "/protected", { token: s.access_token }), 401, "invalid_token");
      expectError(await refreshWith(s.refresh_token), 401, "invalid_token");
    }
    expect((await call("GET", "/protected", { token: stranger.access_token })).status).toBe(200);
    // A new login afterwards works at once.
    const again = await login(reg.input.username);
    expect((await call("GET", "/protected", { token: again.body.access_token })).status).toBe(200);
  });

  it("writes one KV entry for the user, however many sessions, that outlives every access token of theirs", async () => {
    const reg = await registerUser();
    const other = await login(reg.input.username);
    await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: reg.access_token });
    const ttl = (await revokedEntries("usr:")).get(reg.user.id)! - nowSeconds();
    const lastExp = Math.max(...[reg.access_token, other.body.access_token].map((t) => decodeJwtPart(t, 1).exp as number));
    expect(ttl).toBeGreaterThanOrEqual(lastExp - nowSeconds() - 1);
    expect(ttl).toBeLessThanOrEqual(lastExp - nowSeconds() + 60);
    expect((await revokedEntries("sid:")).has(sidOf(other.body.access_token))).toBe(false);
  });
});

describe("revocation lifetimes", () => {
  it("lasts as long as the user's newest access token, even if ACCESS_TOKEN_TTL was lowered since", async () => {
    const reg = await registerUser();
    const other = await login(reg.input.username);
    // As if the other session's token had been issued under a 2-hour ACCESS_TOKEN_TTL, before a change to 900 s.
    await env.DB.prepare("UPDATE sessions SET access_expires_at = ? WHERE id = ?")
      .bind(Date.now() + 7200_000, sidOf(other.body.access_token))
      .run();
    await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: reg.access_token });
    expect((await revokedEntries("usr:")).get(reg.user.id)! - nowSeconds()).toBeGreaterThan(7100);
    // The same for one session.
    const third = await login(reg.input.username);
    await env.DB.prepare("UPDATE sessions SET access_expires_at = ? WHERE id = ?")
      .bind(Date.now() + 7200_000, sidOf(third.body.access_token))
      .run();
    await call("POST", "/logout", { token: third.body.access_token });
    expect((await revokedEntries("sid:")).get(sidOf(third.body.access_token))! - nowSeconds()).toBeGreaterThan(7100);
  });
});

describe("the token-verifying path", () => {
  const protectedRequest = (token: string) => new Request("http://localhost/protected", { headers: { authorization: `Bearer ${token}` } });

  it("never touches D1", async () => {
    const reg = await registerUser();
    const noD1 = new Proxy(
      {},
      {
        get: () => {
          throw new Error("D1 touched on the verify path");
        },
      },
    ) as D1Database;
    const res = await worker.fetch(protectedRequest(reg.access_token), { ...env, DB: noD1 });
    expect(res.status).toBe(200);
  });

  it("reads KV exactly once per request", async () => {
    const reg = await registerUser();
    let reads = 0;
    const counting = new Proxy(env.REVOKED, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (prop === "get" || prop === "getWithMetadata" || prop === "list") reads++;
          return value.apply(target, args);
        };
      },
    });
    const res = await worker.fetch(protectedRequest(reg.access_token), { ...env, REVOKED: counting });
    expect(res.status).toBe(200);
    expect(reads).toBe(1);
  });
});

describe("ending other sessions takes the step-up end_sessions; ending this one is free", () => {
  const end = (token: string, sid: string, body?: object) => call("DELETE", `/sessions/${sid}`, { token, body });
  const alive = async (token: string) => (await call("GET", "/protected", { token })).status === 200;

  it("DELETE /sessions/{id} of this very session needs no proof, as POST /logout", async () => {
    const reg = await registerUser();
    const res = await end(reg.access_token, sidOf(reg.access_token));
    expect(res.status, res.text).toBe(200);
    expect(await alive(reg.access_token)).toBe(false);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
  });

  it("DELETE /sessions/{id} of another session is refused without the password or with a wrong one, and that session lives", async () => {
    const reg = await registerUser();
    const other = (await login(reg.input.username)).body;
    const sid = sidOf(other.access_token);
    expectError(await end(reg.access_token, sid), 400, "validation_failed");
    expectError(await end(reg.access_token, sid, { current_password: "not the password 1" }), 401, "invalid_credentials");
    expect(await alive(other.access_token)).toBe(true);
    expect((await end(reg.access_token, sid, { current_password: PASSWORD })).status).toBe(200);
    expect(await alive(other.access_token)).toBe(false);
  });

  it("with TOTP on, the password alone is not enough: a code as well", async () => {
    const u = await userWithTotp();
    const other = await login(u.input.username);
    expect(other.body.mfa_required).toBe(true);
    const passwordOnly = { current_password: PASSWORD };
    expectError(await call("POST", "/logout/all", { token: u.access_token, body: passwordOnly }), 401, "invalid_mfa_code");
    expect(await alive(u.access_token)).toBe(true);
    const done = await call("POST", "/logout/all", { token: u.access_token, body: { ...passwordOnly, recovery_code: u.recoveryCodes[0] } });
    expect(done.status, done.text).toBe(200);
    expect(await alive(u.access_token)).toBe(false);
  });

  it("POST /logout/all is refused without the proof and ends nothing", async () => {
    const reg = await registerUser();
    const other = (await login(reg.input.username)).body;
    expectError(await call("POST", "/logout/all", { token: reg.access_token }), 400, "validation_failed");
    expect(await alive(other.access_token)).toBe(true);
    expect(await alive(reg.access_token)).toBe(true);
  });

  it("a passed step-up leaves no elevated state: the next request to end sessions needs its own proof", async () => {
    const reg = await registerUser();
    const a = (await login(reg.input.username)).body;
    const b = (await login(reg.input.username)).body;
    expect((await end(reg.access_token, sidOf(a.access_token), { current_password: PASSWORD })).status).toBe(200);
    // The same session, at once: the proof went with that request only, nothing was stored for this session.
    expectError(await end(reg.access_token, sidOf(b.access_token)), 400, "validation_failed");
    expectError(await call("POST", "/logout/all", { token: reg.access_token }), 400, "validation_failed");
    expectError(await call("POST", "/keys", { token: reg.access_token, body: { name: "After a step-up", scopes: ["user"] } }), 400, "validation_failed");
    expect(await alive(b.access_token)).toBe(true);
  });
});
