import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { activeKeys, keyWindows } from "../src/auth/core/signing-keys";
import { maintainRing } from "../src/auth/keys/rotation";
import { getConfig } from "../src/config";
import { FREQUENT } from "../src/cron";
import { getDb } from "../src/db/client";
import worker from "../src/index";
import { call, d1Usage, decodeJwtPart, expectError, login, makeAdmin, once, PASSWORD, refreshWith, registerUser, testJwk } from "./helpers";

/**
 * The signing key ring (SIGNING_KEYS = "rotating", auth/core/signing-keys.ts). The rest of the suite signs
 * with JWT_PRIVATE_KEY; here each request gets the ring's settings. KEY_PROPAGATION 0 makes every
 * request read the mirror, so a test sees each change at once; the windows then are
 * publish 600 s (JWKS_MAX_AGE) and keep 900 + 600 + 60 s.
 */
const RING = { SIGNING_KEYS: "rotating", KEY_PROPAGATION: "0" } as const;
/** A deployment that never had JWT_PRIVATE_KEY: the ring makes its own keys. */
const FRESH = { ...RING, JWT_PRIVATE_KEY: "" } as const;
/** The operator's step-up (rotate_signing_keys, retire_signing_key): the password in the request. */
const STEP = { current_password: PASSWORD };
const ringEnv = (over: Partial<Env> = RING) => ({ ...env, ...over }) as Env;
const stores = (over: Partial<Env> = RING, kv: KVNamespace = env.REVOKED) => ({ config: getConfig(ringEnv(over)), db: getDb(env.DB), kv });

const MINUTE = 60_000;
const DAY = 86_400_000;

type Row = {
  kid: string;
  state: string;
  origin: string;
  public_jwk: string;
  sealed_private_jwk: string | null;
  published_at: number | null;
  retire_after: number | null;
};
const rows = async () => (await env.DB.prepare("SELECT * FROM signing_keys ORDER BY created_at").all<Row>()).results;
const kidIn = async (state: string) => (await rows()).filter((r) => r.state === state).map((r) => r.kid);
/** Moves the next key's publication into the past, as if the window had passed. */
const publishedAgo = (ms: number) =>
  env.DB.prepare("UPDATE signing_keys SET published_at = ? WHERE state = 'next'")
    .bind(Date.now() - ms)
    .run();
const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const jwksKids = async (over: Partial<Env> = RING) =>
  ((await call("GET", "/.well-known/jwks.json", { bindings: over })).body.keys as { kid: string }[]).map((k) => k.kid);
const protectedWith = (token: string, over: Partial<Env> = RING) => call("GET", "/protected", { token, bindings: over });

async function ringAdmin(over: Partial<Env> = RING) {
  const reg = await registerUser();
  await makeAdmin(reg.user.id);
  const res = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: over });
  expect(res.status, res.text).toBe(200);
  return res.body.access_token as string;
}

beforeEach(async () => {
  // Each test starts a ring of its own: no keys, no mirror.
  await env.DB.prepare("DELETE FROM signing_keys").run();
  await env.REVOKED.delete("keyring");
});

describe("the key ring starts", () => {
  it("from JWT_PRIVATE_KEY: that key keeps signing, so every token issued before verifies and nobody is signed out", async () => {
    const before = await registerUser(); // signed by JWT_PRIVATE_KEY (SIGNING_KEYS = "secret")
    expect((await protectedWith(before.access_token)).status).toBe(200);
    const after = await login(before.input.username);
    const ringLogin = await call("POST", "/login", { body: { username: before.input.username, password: PASSWORD }, bindings: RING });
    expect(kidOf(ringLogin.body.access_token)).toBe(testJwk().kid);
    expect((await protectedWith(after.body.access_token)).status).toBe(200);
    // A refresh whose answer was lost just before the switch, retried just after: the same successor.
    const lost = await refreshWith(before.refresh_token);
    expect(lost.status).toBe(200);
    const retried = await call("POST", "/refresh", {
      body: { refresh_token: before.refresh_token },
      headers: { "cf-connecting-ip": "10.200.0.1", "user-agent": "TestBrowser/1.0" },
      bindings: RING,
    });
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.refresh_token).toBe(lost.body.refresh_token);

    const keys = await rows();
    expect(keys.map((k) => [k.state, k.origin])).toEqual([
      ["current", "imported"],
      ["next", "generated"],
    ]);
    expect(keys[0]!.kid).toBe(testJwk().kid);
    // Published in the JWKS at once, public halves only.
    const jwks = await call("GET", "/.well-known/jwks.json", { bindings: RING });
    expect(jwks.body.keys.map((k: { kid: string }) => k.kid)).toEqual(keys.map((k) => k.kid));
    expect(JSON.stringify(jwks.body)).not.toMatch(/"d"/);
  });

  it("with keys of its own when there is no JWT_PRIVATE_KEY, private halves sealed in D1 and KV", async () => {
    const reg = await call("POST", "/register", { body: { username: `ring_${Date.now().toString(36)}`, password: PASSWORD }, bindings: FRESH });
    expect(reg.status, reg.text).toBe(201);
    const [current] = await kidIn("current");
    expect(kidOf(reg.body.access_token)).toBe(current);
    expect((await protectedWith(reg.body.access_token, FRESH)).status).toBe(200);
    // A token from JWT_PRIVATE_KEY means nothing to this ring.
    expect((await protectedWith((await registerUser()).access_token, FRESH)).status).toBe(401);

    for (const k of await rows()) {
      expect(k.origin).toBe("generated");
      expect(JSON.parse(k.public_jwk)).not.toHaveProperty("d");
      expect(k.sealed_private_jwk).toMatch(/^v1\.[\w-]+\.[\w-]+$/); // sealed (AES-GCM), not a JWK
    }
    const mirror = (await env.REVOKED.get("keyring"))!;
    expect(mirror).not.toMatch(/"d"/);
    // The sealed key opens only with this wrapping key: another one is a configuration error, not a signature.
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const other = await call("POST", "/login", {
      body: { username: reg.body.user.username, password: PASSWORD },
      bindings: { ...FRESH, JWT_WRAPPING_KEY: "b3RoZXItd3JhcC1rZXktMDEyMzQ1Njc4OWFiY2RlZjA" },
    });
    expectError(other, 500, "internal_error");
    expect(logged.mock.calls.map((c) => String(c[0])).join("\n")).toMatch(/config_invalid.*JWT_WRAPPING_KEY: the signing key ring does not open/);
    logged.mockRestore();
  });

  it("makes every key a fresh P-256 key for ES256 alone, whatever turns the ring", async () => {
    await maintainRing(stores(FRESH), {});
    await publishedAgo(600_000);
    await maintainRing(stores(FRESH), { rotate: true });
    const keys = (await rows()).map((k) => JSON.parse(k.public_jwk) as Record<string, string>);
    expect(keys).toHaveLength(3);
    for (const k of keys)
      expect(k).toEqual({ kty: "EC", crv: "P-256", x: expect.any(String), y: expect.any(String), kid: expect.any(String), alg: "ES256", use: "sig" });
    expect(new Set(keys.map((k) => k.x)).size).toBe(3); // no key made twice
    const jwks = await call("GET", "/.well-known/jwks.json", { bindings: FRESH });
    expect(jwks.body.keys.map((k: { alg: string }) => k.alg)).toEqual(["ES256", "ES256", "ES256"]);
  });

  it("once, when two requests start it at the same time", async () => {
    const [a, b] = await Promise.all([maintainRing(stores(FRESH), {}), maintainRing(stores(FRESH), {})]);
    expect(a.mirror.signing.kid).toBe(b.mirror.signing.kid);
    expect((await rows()).map((k) => k.state).sort()).toEqual(["current", "next"]);
  });
});

describe("the cron turns the ring", () => {
  it("only once the current key has signed KEY_ROTATION_DAYS; the old key verifies its tokens until its window ends, then is retired", async () => {
    const t0 = Date.now();
    await maintainRing(stores(), {}, new Date(t0));
    const first = await call("POST", "/register", { body: { username: `cron_${t0.toString(36)}`, password: PASSWORD }, bindings: RING });
    const [oldKid] = await kidIn("current");
    const [nextKid] = await kidIn("next");
    expect(kidOf(first.body.access_token)).toBe(oldKid);

    // A day short of 30: nothing turns.
    expect((await maintainRing(stores(), { scheduled: true }, new Date(t0 + 29 * DAY))).rotated).toBeUndefined();
    const turned = await maintainRing(stores(), { scheduled: true }, new Date(t0 + 30 * DAY + MINUTE));
    expect(turned.rotated).toEqual({ from: oldKid, to: nextKid });
    expect(await kidIn("previous")).toEqual([oldKid]);
    expect(await jwksKids()).toEqual([nextKid, (await kidIn("next"))[0], oldKid]);

    // New tokens come from the new key; the old key's still verify.
    const relogin = await call("POST", "/login", { body: { username: first.body.user.username, password: PASSWORD }, bindings: RING });
    expect(kidOf(relogin.body.access_token)).toBe(nextKid);
    expect((await protectedWith(first.body.access_token)).status).toBe(200);

    // Kept for the whole window (counted from the mirror that showed the turn), then retired.
    const keepFor = keyWindows(getConfig(ringEnv())).keepFor;
    const retireAfter = (await rows()).find((k) => k.kid === oldKid)!.retire_after!;
    expect(retireAfter).toBe(t0 + 30 * DAY + MINUTE + keepFor);
    expect((await maintainRing(stores(), { scheduled: true }, new Date(retireAfter - 1000))).retired).toEqual([]);
    expect((await maintainRing(stores(), { scheduled: true }, new Date(retireAfter))).retired).toEqual([oldKid]);
    const retired = (await rows()).find((k) => k.kid === oldKid)!;
    expect(retired).toMatchObject({ state: "retired", sealed_private_jwk: null, retired_reason: "scheduled" });
    expect(await jwksKids()).not.toContain(oldKid);
    expectError(await protectedWith(first.body.access_token), 401, "invalid_token");
    expect((await protectedWith(relogin.body.access_token)).status).toBe(200);
  });

  it("never on a request: a key past its rotation age keeps signing, with no change in D1 or the audit, until the cron runs", async () => {
    await maintainRing(stores(FRESH), {});
    const [old] = await kidIn("current");
    // Past its rotation age, its next key lost, and no mirror: the request reads D1.
    await env.DB.prepare("DELETE FROM signing_keys WHERE state = 'next'").run();
    await env.DB.prepare("UPDATE signing_keys SET activated_at = ? WHERE state = 'current'")
      .bind(Date.now() - 31 * DAY)
      .run();
    await env.REVOKED.delete("keyring");
    const ringAudits = async () => (await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event LIKE 'signing_key_%'").first<{ n: number }>())!.n;
    // Two requests (a sign-up, a login): both sign with the old key, and neither changes the ring nor audits.
    const signs = async () => {
      const [before, audits] = [await rows(), await ringAudits()];
      const reg = await call("POST", "/register", { body: { username: `age_${crypto.randomUUID().slice(0, 8)}`, password: PASSWORD }, bindings: FRESH });
      expect(reg.status, reg.text).toBe(201);
      const again = await call("POST", "/login", { body: { username: reg.body.user.username, password: PASSWORD }, bindings: FRESH });
      expect(again.status, again.text).toBe(200);
      expect(await rows()).toEqual(before);
      expect(await ringAudits()).toBe(audits);
      return [kidOf(reg.body.access_token), kidOf(again.body.access_token)];
    };
    expect(await signs()).toEqual([old, old]);

    // The cron makes a next key; once it has been published for its window, requests still sign with the old one.
    expect((await maintainRing(stores(FRESH), { scheduled: true })).rotated).toBeUndefined();
    const [next] = await kidIn("next");
    await publishedAgo(600_000);
    await env.REVOKED.delete("keyring");
    expect(await signs()).toEqual([old, old]);
    // Only the cron turns it.
    expect((await maintainRing(stores(FRESH), { scheduled: true })).rotated).toEqual({ from: old, to: next });
  });

  it("waits when the next key has not been published for the full window, and turns on a later run", async () => {
    const t0 = Date.now();
    await maintainRing(stores(), {}, new Date(t0));
    // The mirror showed the next key only now (as after a failed first mirror write).
    await env.DB.prepare("UPDATE signing_keys SET published_at = ?, activated_at = ? WHERE state IN ('next', 'current')")
      .bind(t0, t0 - 31 * DAY)
      .run();
    const publishFor = keyWindows(getConfig(ringEnv())).publishFor;
    expect((await maintainRing(stores(), { scheduled: true }, new Date(t0 + publishFor - 1000))).rotated).toBeUndefined();
    expect((await maintainRing(stores(), { scheduled: true }, new Date(t0 + publishFor))).rotated).toBeDefined();
  });

  it("through the Worker's scheduled handler: every trigger turns the ring, only the others do housekeeping", async () => {
    await maintainRing(stores(), {});
    const [before] = await kidIn("current");
    const run = async (cron: string, at: number) => {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron, scheduledTime: at }), ringEnv(), ctx);
      await waitOnExecutionContext(ctx);
    };
    // An audit row past AUDIT_RETENTION_DAYS: housekeeping drops it.
    const old = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO audit_events (created_at, event, request_id) VALUES (?, 'logout', ?)")
      .bind(Date.now() - 100 * DAY, old)
      .run();
    const oldRows = async () => (await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE request_id = ?").bind(old).first<{ n: number }>())!.n;

    await run(FREQUENT, Date.now() + MINUTE);
    expect(await kidIn("current")).toEqual([before]);
    await run(FREQUENT, Date.now() + 31 * DAY);
    expect(await kidIn("previous")).toEqual([before]);
    expect(await oldRows()).toBe(1);
    await run("23 3 * * *", Date.now() + 62 * DAY);
    expect(await kidIn("previous")).toHaveLength(1);
    expect(await kidIn("previous")).not.toEqual([before]);
    expect(await oldRows()).toBe(0);
  });
});

describe("an operator", () => {
  it("lists the ring and its windows, never a private half", async () => {
    const admin = await ringAdmin();
    const res = await call("GET", "/admin/keys", { token: admin, bindings: RING });
    expect(res.status, res.text).toBe(200);
    expect(res.body.windows).toEqual({ publish_for: 600, keep_for: 900 + 600 + 60, rotate_every: 30 * 86_400 });
    expect(res.body.keys.map((k: { state: string }) => k.state).sort()).toEqual(["current", "next"]);
    expect(res.text).not.toMatch(/sealed|"d"/);
  });

  it("forces a rotation once the next key has been published for the window: 409 key_not_ready before, saying when", async () => {
    const admin = await ringAdmin();
    const early = await call("POST", "/admin/keys/rotate", { token: admin, body: STEP, bindings: RING });
    expectError(early, 409, "key_not_ready");
    expect(early.body.message).toMatch(/may sign at \d{4}-\d\d-\d\dT/);
    const [current] = await kidIn("current");
    const [next] = await kidIn("next");
    expect(current).toBe(testJwk().kid);

    await publishedAgo(600_000);
    const res = await call("POST", "/admin/keys/rotate", { token: admin, body: STEP, bindings: RING });
    expect(res.status, res.text).toBe(200);
    expect(res.body.rotated).toEqual({ from: current, to: next });
    // The admin's own token (from the old key) still works.
    expect((await call("GET", "/admin/keys", { token: admin, bindings: RING })).status).toBe(200);
    const adminId = decodeJwt(admin).sub;
    const audit = await env.DB.prepare("SELECT event, user_id, detail FROM audit_events WHERE event LIKE 'signing_key_%' AND user_id = ?").bind(adminId).all();
    expect(audit.results.map((r) => r.event).sort()).toEqual(["signing_key_created", "signing_key_rotated"]);
    expect(JSON.parse(audit.results.find((r) => r.event === "signing_key_rotated")!.detail as string)).toEqual({ from: current, to: next, forced: true });
  });

  it("retires a leaked key at once: its tokens are refused, the next key signs, refreshing signs nobody out", async () => {
    const admin = await ringAdmin();
    const user = await call("POST", "/register", { body: { username: `leak_${Date.now().toString(36)}`, password: PASSWORD }, bindings: RING });
    const leaked = kidOf(user.body.access_token)!;
    const [next] = await kidIn("next");

    const res = await call("POST", `/admin/keys/${leaked}/retire`, { token: admin, body: STEP, bindings: RING });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ retired: [leaked], rotated: { from: leaked, to: next } });
    expect(res.body.message).toMatch(
      /refuses the access tokens it signed within KEY_PROPAGATION.*Resource servers refuse them once their cached JWKS expires.*nobody is signed out/s,
    );
    expect(await jwksKids()).not.toContain(leaked);
    expect((await rows()).find((k) => k.kid === leaked)).toMatchObject({ state: "retired", sealed_private_jwk: null, retired_reason: "emergency" });

    expectError(await protectedWith(user.body.access_token), 401, "invalid_token");
    const refreshed = await call("POST", "/refresh", { body: { refresh_token: user.body.refresh_token }, bindings: RING });
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(kidOf(refreshed.body.access_token)).toBe(next);
    expect((await protectedWith(refreshed.body.access_token)).status).toBe(200);
    expect(await kidIn("next")).toHaveLength(1); // a new next key took its place

    // Retired already (a retry): 200, nothing more changes. Unknown: 404.
    const again = await ringAdmin();
    const repeated = await call("POST", `/admin/keys/${leaked}/retire`, { token: again, body: STEP, bindings: RING });
    expect(repeated.status, repeated.text).toBe(200);
    expect(repeated.body.retired).toEqual([]);
    expect(await kidIn("next")).toHaveLength(1);
    expectError(await call("POST", "/admin/keys/no-such-key/retire", { token: again, body: STEP, bindings: RING }), 404, "not_found");
  });

  it("is refused while JWT_PRIVATE_KEY signs (409 keys_not_rotating), and without the admin role (403)", async () => {
    const admin = await ringAdmin({});
    for (const [method, path] of [
      ["GET", "/admin/keys"],
      ["POST", "/admin/keys/rotate"],
      ["POST", "/admin/keys/any/retire"],
    ] as const) {
      expectError(await call(method, path, { token: admin, ...(method === "POST" ? { body: STEP } : {}) }), 409, "keys_not_rotating");
      expectError(await call(method, path, { token: (await registerUser()).access_token, bindings: RING }), 403, "forbidden");
    }
  });

  it("two forced rotations at once turn the ring once", async () => {
    await maintainRing(stores(), {});
    await publishedAgo(600_000);
    const results = await Promise.allSettled([maintainRing(stores(), { rotate: true }), maintainRing(stores(), { rotate: true })]);
    const turned = results.filter((r) => r.status === "fulfilled" && r.value.rotated);
    expect(turned).toHaveLength(1);
    expect((await rows()).map((k) => k.state).sort()).toEqual(["current", "next", "previous"]);
  });
});

describe("the mirror in KV", () => {
  it("a failed write leaves the windows unstarted; the next request writes it and starts them", async () => {
    const failing = once(env.REVOKED, "put", async () => {
      throw new Error("injected: KV put failed");
    });
    await expect(maintainRing(stores(FRESH, failing), {})).rejects.toMatchObject({
      name: "RevocationIncomplete",
      cause: { message: expect.stringMatching(/injected/) },
    });
    expect((await rows()).find((k) => k.state === "next")!.published_at).toBeNull(); // no verifier has seen it
    expect(await env.REVOKED.get("keyring")).toBeNull();

    // A request whose own mirror write fails too (another isolate took KV's one write a second) signs with D1's ring.
    const warned = vi.spyOn(console, "warn").mockImplementation(() => {});
    const failingAgain = once(env.REVOKED, "put", async () => {
      throw new Error("injected: KV put failed");
    });
    const first = await call("POST", "/register", {
      body: { username: `mir_${Date.now().toString(36)}`, password: PASSWORD },
      bindings: { ...FRESH, REVOKED: failingAgain },
    });
    expect(first.status, first.text).toBe(201);
    expect(kidOf(first.body.access_token)).toBe((await kidIn("current"))[0]);
    expect(warned.mock.calls.map((c) => String(c[0])).join("\n")).toMatch(/key_ring_mirror_failed/);
    warned.mockRestore();
    expect(await env.REVOKED.get("keyring")).toBeNull();

    const reg = await call("POST", "/register", { body: { username: `mir2_${Date.now().toString(36)}`, password: PASSWORD }, bindings: FRESH });
    expect(reg.status, reg.text).toBe(201);
    expect(await env.REVOKED.get("keyring")).not.toBeNull();
    expect((await protectedWith(first.body.access_token, FRESH)).status).toBe(200);
    expect((await rows()).every((k) => k.published_at !== null)).toBe(true);
  });

  it("keeps the token path off D1 once the ring exists, and the isolate's copy off KV within KEY_PROPAGATION / 2", async () => {
    const reg = await call("POST", "/register", { body: { username: `path_${Date.now().toString(36)}`, password: PASSWORD }, bindings: RING });
    const steady = { SIGNING_KEYS: "rotating", KEY_PROPAGATION: "120" } as const;
    const first = await d1Usage("GET", "/protected", { token: reg.body.access_token, bindings: steady });
    expect(first.res.status).toBe(200);
    expect(first.n).toBe(0);
    // A second request in this isolate reads KV for the revocation check only, not for the ring.
    const gets: unknown[] = [];
    const counted = new Proxy(env.REVOKED, {
      get: (t, p) => (p === "get" ? (...a: unknown[]) => (gets.push(a[0]), (t.get as (...x: unknown[]) => unknown)(...a)) : Reflect.get(t, p)),
    });
    const second = await d1Usage("GET", "/protected", { token: reg.body.access_token, bindings: { ...steady, REVOKED: counted } });
    expect(second.res.status).toBe(200);
    expect(second.n).toBe(0);
    expect(gets).toHaveLength(1);
    expect(gets[0]).not.toBe("keyring");
  });

  it("a run that read D1 before another run's change does not leave its older copy in KV", async () => {
    await maintainRing(stores(FRESH), {});
    const [leaked] = await kidIn("current");
    // The cron builds its mirror, then its write waits while an operator retires the signing key.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = once(env.REVOKED, "put", async (real, args) => {
      await gate;
      return real(...args);
    });
    const cron = maintainRing(stores(FRESH, slow), { scheduled: true });
    await vi.waitFor(async () => expect(await env.DB.prepare("SELECT 1 FROM signing_keys").first()).not.toBeNull());
    await new Promise((r) => setTimeout(r, 50));
    await maintainRing(stores(FRESH), { retire: leaked!, by: "operator" });
    release();
    await cron;
    const mirror = JSON.parse((await env.REVOKED.get("keyring"))!);
    expect(mirror.signing.kid).not.toBe(leaked);
    expect(mirror.keys.map((k: { kid: string }) => k.kid)).not.toContain(leaked);
    const reg = await call("POST", "/register", { body: { username: `race_${Date.now().toString(36)}`, password: PASSWORD }, bindings: FRESH });
    expect(kidOf(reg.body.access_token)).not.toBe(leaked);
  });

  it("starts the windows only of keys its mirror showed", async () => {
    await maintainRing(stores(FRESH), {});
    const [next] = await kidIn("next");
    // An operator retires the next key; the mirror write fails, so its replacement is unpublished.
    const failing = once(env.REVOKED, "put", async () => {
      throw new Error("injected: KV put failed");
    });
    await expect(maintainRing(stores(FRESH, failing), { retire: next!, by: "operator" })).rejects.toMatchObject({
      name: "RevocationIncomplete",
      cause: { message: expect.stringMatching(/injected/) },
    });
    const replacement = (await rows()).find((k) => k.state === "next")!;
    expect(replacement.published_at).toBeNull();
    // A mirror that does not show it (the one in KV, as a slow run wrote it) starts nothing for it.
    const { markMirrored } = await import("../src/db/signing-keys");
    await markMirrored(getDb(env.DB), new Date(), 1000, { published: [next!], stopped: [] });
    expect((await rows()).find((k) => k.kid === replacement.kid)!.published_at).toBeNull();
    // The next run mirrors it, and its window starts then.
    await maintainRing(stores(FRESH), { scheduled: true });
    expect((await rows()).find((k) => k.kid === replacement.kid)!.published_at).not.toBeNull();
  });

  it("a failed mirror write on an emergency retirement answers 503 with Retry-After; the retry answers 200, repairs KV and was audited once", async () => {
    const admin = await ringAdmin(FRESH);
    const [leaked] = await kidIn("current");
    const failing = once(env.REVOKED, "put", async () => {
      throw new Error("injected: KV put failed");
    });
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const first = await call("POST", `/admin/keys/${leaked}/retire`, { token: admin, body: STEP, bindings: { ...FRESH, REVOKED: failing } });
    logged.mockRestore();
    expectError(first, 503, "service_unavailable");
    expect(first.headers.get("retry-after")).toBe("1");
    expect(JSON.parse((await env.REVOKED.get("keyring"))!).signing.kid).toBe(leaked); // KV still has it

    const admin2 = await ringAdmin(FRESH); // the first admin token was signed by the retired key
    const retry = await call("POST", `/admin/keys/${leaked}/retire`, { token: admin2, body: STEP, bindings: FRESH });
    expect(retry.status, retry.text).toBe(200);
    const mirror = JSON.parse((await env.REVOKED.get("keyring"))!);
    expect(mirror.keys.map((k: { kid: string }) => k.kid)).not.toContain(leaked);
    const audit = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'signing_key_retired' AND detail LIKE ?")
      .bind(`%${leaked}%`)
      .first<{ n: number }>();
    expect(audit!.n).toBe(1);
  });

  it("a failed mirror write on a forced rotation answers 503 with Retry-After; the retry completes that rotation, never turns twice", async () => {
    const admin = await ringAdmin(FRESH);
    const [current] = await kidIn("current");
    const [next] = await kidIn("next");
    await publishedAgo(600_000);
    const failing = once(env.REVOKED, "put", async () => {
      throw new Error("injected: KV put failed");
    });
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const first = await call("POST", "/admin/keys/rotate", { token: admin, body: STEP, bindings: { ...FRESH, REVOKED: failing } });
    logged.mockRestore();
    expectError(first, 503, "service_unavailable");
    expect(first.headers.get("retry-after")).toBe("1");
    expect(JSON.parse((await env.REVOKED.get("keyring"))!).signing.kid).toBe(current); // D1 turned, KV did not

    const retry = await call("POST", "/admin/keys/rotate", { token: admin, body: STEP, bindings: FRESH });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body.rotated).toEqual({ from: current, to: next });
    expect(JSON.parse((await env.REVOKED.get("keyring"))!).signing.kid).toBe(next);
    expect(await kidIn("current")).toEqual([next]);
    expect(await kidIn("previous")).toEqual([current]);
    const audit = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'signing_key_rotated' AND detail LIKE ?")
      .bind(`%${next}%`)
      .first<{ n: number }>();
    expect(audit!.n).toBe(1);
    // Sent once more, the rotation is over: a new one waits for its next key's window.
    expectError(await call("POST", "/admin/keys/rotate", { token: admin, body: STEP, bindings: FRESH }), 409, "key_not_ready");
  });

  it("KV down: a new view comes from D1; with D1 down too, the isolate's ring serves for JWKS_MAX_AGE past its refresh, then fails", async () => {
    const steady = { SIGNING_KEYS: "rotating", KEY_PROPAGATION: "120", JWT_PRIVATE_KEY: "" } as const;
    await maintainRing(stores(steady), {});
    const kvDown = new Proxy(env.REVOKED, {
      get: (t, p) =>
        p === "get"
          ? async () => {
              throw new Error("injected: KV down");
            }
          : Reflect.get(t, p),
    });
    const dbDown = getDb(
      new Proxy(env.DB, {
        get: (t, p) =>
          p === "prepare" || p === "batch"
            ? () => {
                throw new Error("injected: D1 down");
              }
            : Reflect.get(t, p),
      }),
    );
    const warned = vi.spyOn(console, "warn").mockImplementation(() => {});
    // No view in this isolate for this wrapping key yet: KV fails, D1 answers.
    const wrap = "ZnJlc2gtd3JhcC1rZXktZm9yLXRoaXMtdGVzdC0wMTI";
    await env.DB.prepare("DELETE FROM signing_keys").run();
    await env.REVOKED.delete("keyring");
    const own = { ...steady, JWT_WRAPPING_KEY: wrap };
    await maintainRing(stores(own), {});
    const [current] = await kidIn("current");
    expect((await activeKeys(stores(own, kvDown))).kid).toBe(current);
    // Both down, a minute later: every request waiting on the re-read gets the isolate's ring.
    const real = Date.now;
    const later = (ms: number) => vi.spyOn(Date, "now").mockImplementation(() => real() + ms);
    later(61_000);
    const both = { ...stores(own, kvDown), db: dbDown };
    const joined = await Promise.allSettled([1, 2, 3].map(() => activeKeys(both)));
    expect(joined.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    // Past the refresh plus JWKS_MAX_AGE (60 + 600 s) since the last good read: refused.
    later(61_000 + 600_000 + 1000);
    await expect(activeKeys(both)).rejects.toThrow(/D1 down|KV down/);
    vi.restoreAllMocks();
    warned.mockRestore();
  });
});

describe("discovery", () => {
  it("serves issuer metadata with what this API does and nothing it does not, at both well-known paths", async () => {
    const oidc = await call("GET", "/.well-known/openid-configuration", { bindings: RING });
    const oauth = await call("GET", "/.well-known/oauth-authorization-server", { bindings: RING });
    expect(oidc.status).toBe(200);
    expect(oauth.body).toEqual(oidc.body);
    expect(oidc.headers.get("cache-control")).toBe("public, max-age=600");
    expect(oidc.body).toMatchObject({
      issuer: env.ISSUER,
      jwks_uri: `${env.ISSUER}/.well-known/jwks.json`,
      access_token_signing_alg_values_supported: ["ES256"],
      login_endpoint: `${env.ISSUER}/login`,
      refresh_endpoint: `${env.ISSUER}/refresh`,
    });
    // /docs only while it is served.
    expect(oidc.body).not.toHaveProperty("service_documentation");
    const withDocs = await call("GET", "/.well-known/openid-configuration", { bindings: { ...RING, API_DOCS: "on" } });
    expect(withDocs.body.service_documentation).toBe(`${env.ISSUER}/docs`);
    // Every endpoint it names is served (a POST-only one answers a GET 405, never 404), and only the code flow.
    const endpoints = Object.entries(oidc.body).filter(([k]) => k.endsWith("_endpoint"));
    expect(endpoints.length).toBeGreaterThanOrEqual(7);
    for (const [, url] of endpoints) expect((await call("GET", new URL(url as string).pathname, { bindings: RING })).status).not.toBe(404);
    expect(oidc.body).not.toHaveProperty("registration_endpoint"); // OAUTH_REGISTRATION is closed
    expect(oidc.body.response_types_supported).toEqual(["code"]);
    expect(oidc.body.grant_types_supported).not.toContain("implicit");
    // Every claim a token carries is listed; the issuer is the tokens' iss.
    const reg = await call("POST", "/register", { body: { username: `disc_${Date.now().toString(36)}`, password: PASSWORD }, bindings: RING });
    const claims = decodeJwtPart(reg.body.access_token, 1);
    expect(oidc.body.claims_supported).toEqual(expect.arrayContaining(Object.keys(claims)));
    expect(claims.iss).toBe(oidc.body.issuer);
    // The JWKS it points at verifies the token.
    const jwksPath = new URL(oidc.body.jwks_uri).pathname;
    const jwks = await call("GET", jwksPath, { bindings: RING });
    expect(jwks.body.keys.map((k: { kid: string }) => k.kid)).toContain(kidOf(reg.body.access_token));
    expect(jwks.headers.get("cache-control")).toBe("public, max-age=600");
  });
});
