import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PASSWORD, ageRotations, call, decodeJwtPart, expectError, login, makeAdmin, refreshWith, registerUser, sidOf } from "./helpers";

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

    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    // ...and the chain goes on with the newest token.
    const second = await refreshWith(first.body.refresh_token);
    expect(second.status).toBe(200);
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

  it("within the grace window, a replayed token is refused but the session lives on (a racing tab)", async () => {
    const reg = await registerUser();
    const next = await refreshWith(reg.refresh_token);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expect((await refreshWith(next.body.refresh_token)).status).toBe(200);
  });

  it("within the grace window, a replay from another client is theft at once", async () => {
    const reg = await registerUser();
    const next = await refreshWith(reg.refresh_token);
    expectError(await refreshWith(reg.refresh_token, "10.66.6.6"), 401, "invalid_token");
    expectError(await refreshWith(next.body.refresh_token), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: next.body.access_token }), 401, "invalid_token");
  });

  it("lets exactly one of many concurrent refreshes with one token win", async () => {
    const reg = await registerUser();
    const results = await Promise.all(Array.from({ length: 6 }, () => refreshWith(reg.refresh_token)));
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) expectError(r, 401, "invalid_token");
    expect((await refreshWith(winners[0]!.body.refresh_token)).status).toBe(200);
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM rotated_refresh_tokens WHERE session_id = ?").bind(sidOf(reg.access_token)).first<{ n: number }>())!;
    expect(n).toBe(2);
  });

  it("answers 401 for an expired session", async () => {
    const reg = await registerUser();
    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE id = ?").bind(Date.now() - 1000, sidOf(reg.access_token)).run();
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
  });

  it("answers 401 for unknown, malformed or missing tokens, and for an access token", async () => {
    const reg = await registerUser();
    for (const token of ["A".repeat(43), "short", reg.access_token.slice(0, 200)]) expectError(await refreshWith(token), 401, "invalid_token");
    expectError(await call("POST", "/refresh", { body: {} }), 401, "invalid_token");
    expectError(await call("POST", "/refresh"), 401, "invalid_token");
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
