import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hashPassword } from "../src/auth/core/passwords";
import {
  type ApiResponse,
  ageRotations,
  call,
  d1BatchAnswerLostAt,
  d1BatchAnswerLostOnce,
  d1StatementAnswerLostOnce,
  d1WriteBeforeBatch,
  expectError,
  kvPutFailsOnce,
  login,
  once,
  PASSWORD,
  refreshWith,
  registerUser,
  sidOf,
} from "./helpers";

/**
 * Partial failures, injected: a KV put or a D1 statement fails once (nothing applied), or a D1 batch
 * is applied but its answer is lost. A revocation must never answer 200 while a revoked token still
 * passes here, and the client's retry of the same request must complete it.
 */

afterEach(() => vi.restoreAllMocks());

const NEW_PASSWORD = "brand new secret 7";
const APP = "http://localhost:5173";

function expectRetryLater(res: ApiResponse) {
  expectError(res, 503, "service_unavailable");
  expect(res.headers.get("retry-after")).toBe("1");
}

const expectDead = async (access: string, refresh: string) => {
  expectError(await call("GET", "/protected", { token: access }), 401, "invalid_token");
  expectError(await refreshWith(refresh), 401, "invalid_token");
};

/** A user with two sessions, one of which has an older access token (from before a refresh) too. */
async function userWithSessions() {
  const reg = await registerUser();
  const rotated = await refreshWith(reg.refresh_token);
  const other = await login(reg.input.username);
  return {
    reg,
    older: reg.access_token,
    current: rotated.body as { access_token: string; refresh_token: string },
    other: other.body as { access_token: string; refresh_token: string },
  };
}

describe("a KV put fails once: 503 with Retry-After, and the retry completes the revocation", () => {
  it("POST /logout", async () => {
    const { older, current, other } = await userWithSessions();
    const REVOKED = kvPutFailsOnce();
    expectRetryLater(await call("POST", "/logout", { token: current.access_token, bindings: { REVOKED } }));
    const retry = await call("POST", "/logout", { token: current.access_token, bindings: { REVOKED } });
    expect(retry.status, retry.text).toBe(200);
    await expectDead(current.access_token, current.refresh_token);
    expectError(await call("GET", "/protected", { token: older }), 401, "invalid_token");
    expect((await call("GET", "/protected", { token: other.access_token })).status).toBe(200);
  });

  it("POST /logout (cookie only)", async () => {
    const reg = await registerUser();
    const REVOKED = kvPutFailsOnce();
    const logout = () => call("POST", "/logout", { headers: { origin: APP, cookie: `refresh_token=${reg.refresh_token}` }, bindings: { REVOKED } });
    expectRetryLater(await logout());
    expect((await logout()).status).toBe(200);
    await expectDead(reg.access_token, reg.refresh_token);
  });

  it("POST /logout/all", async () => {
    const { older, current, other } = await userWithSessions();
    const REVOKED = kvPutFailsOnce();
    expectRetryLater(await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: current.access_token, bindings: { REVOKED } }));
    const retry = await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: current.access_token, bindings: { REVOKED } });
    expect(retry.status, retry.text).toBe(200);
    await expectDead(current.access_token, current.refresh_token);
    await expectDead(other.access_token, other.refresh_token);
    expectError(await call("GET", "/protected", { token: older }), 401, "invalid_token");
  });

  it("POST /password", async () => {
    const { reg, current, other } = await userWithSessions();
    const REVOKED = kvPutFailsOnce();
    const change = () =>
      call("POST", "/password", { token: current.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD }, bindings: { REVOKED } });
    expectRetryLater(await change());
    // The password did change; the retry (same body, old password as current) finishes the job.
    const retry = await change();
    expect(retry.status, retry.text).toBe(200);
    await expectDead(other.access_token, other.refresh_token);
    expect((await call("GET", "/protected", { token: current.access_token })).status).toBe(200);
    expectError(await login(reg.input.username, PASSWORD), 401, "invalid_credentials");
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200);
  });

  it("DELETE /sessions/:id", async () => {
    const { current, other } = await userWithSessions();
    const REVOKED = kvPutFailsOnce();
    const revoke = () =>
      call("DELETE", `/sessions/${sidOf(other.access_token)}`, { body: { current_password: PASSWORD }, token: current.access_token, bindings: { REVOKED } });
    expectRetryLater(await revoke());
    expect((await revoke()).status).toBe(200);
    await expectDead(other.access_token, other.refresh_token);
  });

  it("reuse detection (a stolen refresh token replayed)", async () => {
    const reg = await registerUser();
    const victim = await refreshWith(reg.refresh_token);
    await ageRotations(60);
    const REVOKED = kvPutFailsOnce();
    const replay = () =>
      call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, headers: { "cf-connecting-ip": "10.66.6.6" }, bindings: { REVOKED } });
    expectRetryLater(await replay());
    expectError(await replay(), 401, "invalid_token");
    await expectDead(victim.body.access_token, victim.body.refresh_token);
  });

  it("reuse detection, with no retry: the KV write is retried after the answer", async () => {
    const reg = await registerUser();
    const victim = await refreshWith(reg.refresh_token);
    await ageRotations(60);
    const ctx = createExecutionContext();
    const res = await call("POST", "/refresh", {
      body: { refresh_token: reg.refresh_token },
      headers: { "cf-connecting-ip": "10.66.6.6" },
      bindings: { REVOKED: kvPutFailsOnce() },
      ctx,
    });
    expectRetryLater(res);
    await waitOnExecutionContext(ctx);
    await expectDead(victim.body.access_token, victim.body.refresh_token);
  });

  it("the session cap: the login that ends the oldest session still succeeds, and the KV write is retried after it", async () => {
    const reg = await registerUser();
    const ctx = createExecutionContext();
    const bindings = { REVOKED: kvPutFailsOnce(), MAX_SESSIONS_PER_USER: "1" } as Partial<Env>;
    const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings, ctx });
    expect(res.status, res.text).toBe(200);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    await waitOnExecutionContext(ctx);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
  });

  it("POST /password retried with a refreshed access token still completes the revocation", async () => {
    const { reg, current, other } = await userWithSessions();
    const REVOKED = kvPutFailsOnce();
    expectRetryLater(
      await call("POST", "/password", { token: current.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD }, bindings: { REVOKED } }),
    );
    const refreshed = await refreshWith(current.refresh_token);
    expect(refreshed.status).toBe(200);
    // The retry with the new token: the change is done already, so the old password is wrong now,
    // but the revocation is completed on the way.
    const retry = await call("POST", "/password", { token: refreshed.body.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } });
    expectError(retry, 401, "invalid_credentials");
    await expectDead(other.access_token, other.refresh_token);
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200);
  });

  it("POST /password: the session signed out by its spent budget stays out even if that KV write failed", async () => {
    const reg = await registerUser();
    const guess = (bindings?: Partial<Env>) =>
      call("POST", "/password", {
        token: reg.access_token,
        body: { current_password: "wrong password 1", new_password: NEW_PASSWORD },
        ...(bindings ? { bindings } : {}),
      });
    for (let i = 0; i < 4; i++) expectError(await guess(), 401, "invalid_credentials");
    expectRetryLater(await guess({ REVOKED: kvPutFailsOnce() }));
    expectError(await guess(), 401, "invalid_token");
    expectError(await call("GET", "/me", { token: reg.access_token }), 401, "invalid_token");
  });
});

describe("a D1 write fails once: an error, and the retry completes the revocation", () => {
  it("POST /logout: the revoking batch is applied but its answer is lost", async () => {
    const { older, current } = await userWithSessions();
    const DB = d1BatchAnswerLostOnce();
    expectError(await call("POST", "/logout", { token: current.access_token, bindings: { DB } }), 500, "internal_error");
    expect((await call("POST", "/logout", { token: current.access_token, bindings: { DB } })).status).toBe(200);
    await expectDead(current.access_token, current.refresh_token);
    expectError(await call("GET", "/protected", { token: older }), 401, "invalid_token");
  });

  it("POST /logout/all: the batch is applied but its answer is lost", async () => {
    const { current, other } = await userWithSessions();
    const DB = d1BatchAnswerLostOnce();
    expectError(
      await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: current.access_token, bindings: { DB } }),
      500,
      "internal_error",
    );
    expect((await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: current.access_token, bindings: { DB } })).status).toBe(200);
    await expectDead(current.access_token, current.refresh_token);
    await expectDead(other.access_token, other.refresh_token);
  });

  it("POST /password: the batch is applied but its answer is lost", async () => {
    const { reg, current, other } = await userWithSessions();
    const DB = d1BatchAnswerLostAt(3); // after the step-up's two: the change itself
    const change = () =>
      call("POST", "/password", { token: current.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD }, bindings: { DB } });
    expectError(await change(), 500, "internal_error");
    const retry = await change();
    expect(retry.status, retry.text).toBe(200);
    await expectDead(other.access_token, other.refresh_token);
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200);
  });

  it("POST /password: a retry with a different new password is not taken for a repeat", async () => {
    const { current } = await userWithSessions();
    const DB = d1BatchAnswerLostAt(3); // after the step-up's two: the change itself
    expectError(
      await call("POST", "/password", { token: current.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD }, bindings: { DB } }),
      500,
      "internal_error",
    );
    const other = await call("POST", "/password", { token: current.access_token, body: { current_password: PASSWORD, new_password: "yet another secret 9" } });
    expectError(other, 401, "invalid_credentials");
  });

  it("DELETE /sessions/:id: the revoking statement is applied but its answer is lost", async () => {
    const { current, other } = await userWithSessions();
    const DB = d1StatementAnswerLostOnce(/^update "sessions" set "revoked_at"/i);
    const revoke = () =>
      call("DELETE", `/sessions/${sidOf(other.access_token)}`, { body: { current_password: PASSWORD }, token: current.access_token, bindings: { DB } });
    expectError(await revoke(), 500, "internal_error");
    expect((await revoke()).status).toBe(200);
    await expectDead(other.access_token, other.refresh_token);
  });

  it("reuse detection: the revoking statement is applied but its answer is lost", async () => {
    const reg = await registerUser();
    const victim = await refreshWith(reg.refresh_token);
    await ageRotations(60);
    const DB = d1StatementAnswerLostOnce(/^update "sessions" set "revoked_at"/i);
    const replay = () =>
      call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, headers: { "cf-connecting-ip": "10.66.6.6" }, bindings: { DB } });
    expectError(await replay(), 500, "internal_error");
    expectError(await replay(), 401, "invalid_token");
    await expectDead(victim.body.access_token, victim.body.refresh_token);
  });
});

describe("D1 at its capacity (the database's queue is full)", () => {
  // What D1 answers when more is queued than it can run: the query did not run, so a retry is safe.
  it("a login answers 503 with Retry-After, not 500, and the retry signs in", async () => {
    const reg = await registerUser();
    const DB = once(env.DB, "batch", async () => {
      throw new Error("D1_ERROR: D1 DB is overloaded. Too many requests queued.");
    });
    const busy = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: { DB } });
    expectRetryLater(busy);
    expect((await login(reg.input.username)).status).toBe(200);
  });

  it("a login refused at its second step (the session batch) answers 503, and the retry signs in", async () => {
    const reg = await registerUser();
    let batches = 0;
    const DB = once(
      env.DB,
      "batch",
      async () => {
        throw new Error("D1_ERROR: D1 DB is overloaded. Too many requests queued.");
      },
      () => ++batches === 2,
    );
    expectRetryLater(await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: { DB } }));
    expect(batches).toBe(2);
    expect((await login(reg.input.username)).status).toBe(200);
  });

  it("a refresh answers 503 with Retry-After, and the same refresh token still works", async () => {
    const reg = await registerUser();
    const DB = once(env.DB, "batch", async () => {
      throw new Error("D1 DB is overloaded. Requests queued for too long.");
    });
    expectRetryLater(await call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, bindings: { DB } }));
    expect((await refreshWith(reg.refresh_token)).status).toBe(200);
  });
});

describe("a lost answer", () => {
  it("to POST /refresh: the retry gets the same refresh token, so the client is not signed out", async () => {
    const reg = await registerUser();
    const DB = d1BatchAnswerLostOnce();
    const send = () =>
      call("POST", "/refresh", {
        body: { refresh_token: reg.refresh_token },
        headers: { "cf-connecting-ip": "10.200.0.1", "user-agent": "TestBrowser/1.0" },
        bindings: { DB },
      });
    expectError(await send(), 500, "internal_error"); // rotated in D1; the answer never arrived
    const retry = await send();
    expect(retry.status, retry.text).toBe(200);
    expect((await refreshWith(retry.body.refresh_token)).status).toBe(200);
  });
});

describe("races on credentials", () => {
  it("refuses a login whose password was replaced while it was being checked", async () => {
    const reg = await registerUser();
    // The password changes between the login's hash check and its session write.
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET password_hash = 'replaced', password_version = password_version + 1 WHERE id = ?", reg.user.id);
    const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: { DB } });
    expectError(res, 401, "invalid_credentials");
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(reg.user.id).first<{ n: number }>())!;
    expect(n).toBe(1); // only the registration's
  });

  it("does not take a rehash (same password, new cost) for a change: logins checked meanwhile still succeed", async () => {
    const reg = await registerUser();
    // Another login's rehash of the same password lands between this login's check and its write.
    const rehashed = await hashPassword(PASSWORD, { iterations: 50_000, pepper: env.PASSWORD_PEPPER });
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET password_hash = ? WHERE id = ?", rehashed, reg.user.id);
    expect((await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: { DB } })).status).toBe(200);
    // And for real: after the cost changes, concurrent correct logins all rehash and all succeed.
    const bindings = { PASSWORD_ITERATIONS: "60000" } as Partial<Env>;
    const results = await Promise.all(
      Array.from({ length: 4 }, () => call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings })),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  it("does not let a password change undo a logout-all that landed while it was hashing", async () => {
    const { current, other } = await userWithSessions();
    const sid = sidOf(current.access_token);
    // Another session's logout-all lands between this change's check and its write.
    const DB = once(
      env.DB,
      "batch",
      async (real, args) => {
        expect((await call("POST", "/logout/all", { body: { current_password: PASSWORD }, token: other.access_token })).status).toBe(200);
        return real(...args);
      },
      () => true,
    );
    const change = await call("POST", "/password", {
      token: current.access_token,
      body: { current_password: PASSWORD, new_password: NEW_PASSWORD },
      bindings: { DB },
    });
    expectError(change, 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: current.access_token }), 401, "invalid_token");
    const row = await env.DB.prepare("SELECT revoked_at FROM sessions WHERE id = ?").bind(sid).first<{ revoked_at: number | null }>();
    expect(row!.revoked_at).not.toBeNull();
  });

  it("never leaves a usable session to a login with the old password that raced a password change", async () => {
    for (let round = 0; round < 5; round++) {
      const reg = await registerUser();
      const [old, change] = await Promise.all([
        login(reg.input.username, PASSWORD),
        call("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } }),
      ]);
      expect(change.status, change.text).toBe(200);
      if (old.status === 200) await expectDead(old.body.access_token, old.body.refresh_token);
      else expectError(old, 401, "invalid_credentials");
    }
  });

  it("lets at most one of two concurrent password changes win", async () => {
    const reg = await registerUser();
    const change = (new_password: string) => call("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password } });
    const results = await Promise.all([change("first new secret 1"), change("second new secret 2")]);
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expectError(results.find((r) => r.status !== 200)!, 401, "invalid_credentials");
    const winner = results[0]!.status === 200 ? "first new secret 1" : "second new secret 2";
    const loser = winner === "first new secret 1" ? "second new secret 2" : "first new secret 1";
    expect((await login(reg.input.username, winner)).status).toBe(200);
    expectError(await login(reg.input.username, loser), 401, "invalid_credentials");
  });
});
