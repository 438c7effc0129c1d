import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ageRotations, call, decodeJwtPart, expectError, login, makeAdmin, PASSWORD, refreshWith, registerUser, sidOf } from "./helpers";

afterEach(() => vi.restoreAllMocks());

describe("POST /refresh", () => {
  it("returns a new access and refresh token in the same session; the old refresh token is dead", async () => {
    const reg = await registerUser();
    const first = await refreshWith(reg.refresh_token);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toEqual({ access_token: expect.any(String), refresh_token: expect.any(String), token_type: "Bearer", expires_in: 900 });
    expect(first.body.refresh_token).not.toBe(reg.refresh_token);
    expect(sidOf(first.body.access_token)).toBe(sidOf(reg.access_token));
    expect(first.headers.get("cache-control")).toBe("no-store");
    expect((await call("GET", "/protected", { token: first.body.access_token })).status).toBe(200);

    // ...and the chain goes on with the newest token; the first one is dead now, even for this client.
    const second = await refreshWith(first.body.refresh_token);
    expect(second.status).toBe(200);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expect((await refreshWith(second.body.refresh_token)).status).toBe(200);
  });

  it("reads roles afresh, so a granted role reaches the next access token", async () => {
    const reg = await registerUser();
    await makeAdmin(reg.user.id);
    const res = await refreshWith(reg.refresh_token);
    expect(decodeJwtPart(res.body.access_token, 1).roles).toEqual(["user", "admin"]);
  });

  it("treats reuse of a rotated token as theft: the whole session dies, the newest tokens too", async () => {
    const warn = vi.spyOn(console, "warn");
    const reg = await registerUser();
    const stolen = reg.refresh_token;
    const legit = await refreshWith(stolen); // the victim rotates; the thief still has `stolen`
    const newest = await refreshWith(legit.body.refresh_token);
    await ageRotations(60); // past the grace window
    expectError(await refreshWith(stolen), 401, "invalid_token");

    expectError(await refreshWith(newest.body.refresh_token), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: newest.body.access_token }), 401, "invalid_token");
    const row = await env.DB.prepare("SELECT revoked_at FROM sessions WHERE id = ?").bind(sidOf(reg.access_token)).first<{ revoked_at: number | null }>();
    expect(row!.revoked_at).not.toBeNull();
    const events = warn.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(events).toContainEqual(expect.objectContaining({ event: "refresh_reuse_detected", session_id: sidOf(reg.access_token), user_id: reg.user.id }));
    // Other sessions of the user are untouched.
    expect((await login(reg.input.username)).status).toBe(200);
  });

  it("within the grace window, the same client retrying (answer lost) gets the same successor and a fresh access token", async () => {
    const reg = await registerUser();
    const lost = await refreshWith(reg.refresh_token); // the client never sees this answer
    const retry = await refreshWith(reg.refresh_token);
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body.refresh_token).toBe(lost.body.refresh_token);
    expect(retry.body.access_token).not.toBe(lost.body.access_token);
    expect(sidOf(retry.body.access_token)).toBe(sidOf(reg.access_token));
    expect((await call("GET", "/protected", { token: retry.body.access_token })).status).toBe(200);
    // The successor is single-use like any refresh token, and the session lives on.
    expect((await refreshWith(retry.body.refresh_token)).status).toBe(200);
  });

  it("within the grace window, a replay whose successor was already rotated on is refused, and the session lives on", async () => {
    const reg = await registerUser();
    const next = await refreshWith(reg.refresh_token);
    const newest = await refreshWith(next.body.refresh_token);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expect((await call("GET", "/protected", { token: newest.body.access_token })).status).toBe(200);
    expect((await refreshWith(newest.body.refresh_token)).status).toBe(200);
  });

  it("after the grace window, the same client's retry is refused as theft", async () => {
    const reg = await registerUser();
    const lost = await refreshWith(reg.refresh_token);
    await ageRotations(60);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expectError(await refreshWith(lost.body.refresh_token), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: lost.body.access_token }), 401, "invalid_token");
  });

  it("within the grace window, a replay from another client is theft at once", async () => {
    const reg = await registerUser();
    const next = await refreshWith(reg.refresh_token);
    expectError(await refreshWith(reg.refresh_token, "10.66.6.6"), 401, "invalid_token");
    expectError(await refreshWith(next.body.refresh_token), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: next.body.access_token }), 401, "invalid_token");
  });

  it("lets exactly one of many concurrent refreshes with one token rotate: the others get its successor", async () => {
    const reg = await registerUser();
    const results = await Promise.all(Array.from({ length: 6 }, () => refreshWith(reg.refresh_token)));
    for (const r of results) expect(r.status, r.text).toBe(200);
    const successors = new Set(results.map((r) => r.body.refresh_token));
    expect(successors.size).toBe(1);
    expect((await refreshWith([...successors][0]!)).status).toBe(200);
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM rotated_refresh_tokens WHERE session_id = ?")
      .bind(sidOf(reg.access_token))
      .first<{ n: number }>())!;
    expect(n).toBe(2);
  });

  it("answers 401 for an expired session", async () => {
    const reg = await registerUser();
    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1000, sidOf(reg.access_token))
      .run();
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
  });

  it("answers 401 for unknown, malformed or missing tokens, and for an access token", async () => {
    const reg = await registerUser();
    for (const token of ["A".repeat(43), "short", reg.access_token.slice(0, 200)]) expectError(await refreshWith(token), 401, "invalid_token");
    for (const missing of [await call("POST", "/refresh", { body: {} }), await call("POST", "/refresh")]) {
      expectError(missing, 401, "invalid_token");
      // Says what was missing, not that something sent was wrong.
      expect(missing.body.message).toMatch(/^No refresh token was sent/);
    }
    expectError(await call("POST", "/refresh", { body: { refresh_token: 12 } }), 400, "validation_failed");
  });

  it("keeps the session's absolute expiry: refreshing does not extend it", async () => {
    const reg = await registerUser();
    const sid = sidOf(reg.access_token);
    const before = await env.DB.prepare("SELECT expires_at FROM sessions WHERE id = ?").bind(sid).first<{ expires_at: number }>();
    await refreshWith(reg.refresh_token);
    const after = await env.DB.prepare("SELECT expires_at FROM sessions WHERE id = ?").bind(sid).first<{ expires_at: number }>();
    expect(after!.expires_at).toBe(before!.expires_at);
  });
});

describe("refresh tokens at rest", () => {
  it("are stored only as hashes, in the session row and the rotation history", async () => {
    const reg = await registerUser();
    const next = await refreshWith(reg.refresh_token);
    const dump = JSON.stringify([
      (await env.DB.prepare("SELECT * FROM sessions").all()).results,
      (await env.DB.prepare("SELECT * FROM rotated_refresh_tokens").all()).results,
    ]);
    expect(dump).not.toContain(reg.refresh_token);
    expect(dump).not.toContain(next.body.refresh_token);
    expect((await login(reg.input.username, PASSWORD)).status).toBe(200);
  });
});
