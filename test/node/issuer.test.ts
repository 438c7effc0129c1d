import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import express from "express";
import { auth } from "express-oauth2-jwt-bearer";
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module shared with `npm run demo` and the e2e setup
import { root, start, stop, waitFor } from "../../scripts/servers.mjs";
import { jsonApi, localD1, prepareLocalApi, wranglerEnv } from "./local-api";

/**
 * The API as an issuer, seen from resource servers that know only its URL (docs/design.md "Signing
 * keys"). A real `wrangler dev` with the key ring and short windows (JWKS_MAX_AGE 2 s, nothing to wait
 * for propagation), and verifiers configured from the discovery document alone: one that honours the
 * JWKS's Cache-Control strictly and never refetches, jose's remote JWKS set, express-oauth2-jwt-bearer
 * (discovery by issuerBaseURL), and PyJWT's PyJWKClient (Debian's python3-jwt; .ci/run installs it).
 * Tokens are issued and verified by all of them while the ring turns three times: twice forced by an
 * operator back to back, once by the cron (run through wrangler dev --test-scheduled). Not one valid
 * token may fail; a retired key's tokens must.
 */
const PORT = 8794;
const ISSUER = `http://localhost:${PORT}`;
const AUDIENCE = "edge-auth-api"; // wrangler.toml
const CACHE_MS = 2000; // each verifier keeps the JWKS as long as its Cache-Control says
const PYTHON = "/usr/bin/python3";
const hasPyJwt = spawnSync(PYTHON, ["-c", "import jwt, jwt.algorithms as a; assert a.has_crypto"]).status === 0;
// .ci/run installs PyJWT and sets this: there, a missing PyJWT fails the test instead of skipping it.
const needPyJwt = process.env.EDGE_AUTH_REQUIRE_PYJWT === "1";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const env = wranglerEnv;
const state = mkdtempSync(path.join(tmpdir(), "issuer-"));
const d1 = localD1(state);

const api = jsonApi(ISSUER);

// ---- resource servers, each given only ISSUER ----

type Verifier = (token: string) => Promise<boolean>;

async function joseVerifier(): Promise<Verifier> {
  const meta = (await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json()) as {
    issuer: string;
    jwks_uri: string;
    access_token_signing_alg_values_supported: string[];
  };
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri), { cacheMaxAge: CACHE_MS });
  return async (token) => {
    try {
      await jwtVerify(token, jwks, { issuer: meta.issuer, audience: AUDIENCE, algorithms: meta.access_token_signing_alg_values_supported });
      return true;
    } catch {
      return false;
    }
  };
}

/**
 * The strictest verifier a rotation must satisfy: it keeps the JWKS exactly as long as its
 * Cache-Control says (counted from the request, as HTTP caches do) and never refetches on an unknown
 * kid. Only a key published a full cache window before it signs reaches it in time.
 */
async function cacheControlVerifier(): Promise<Verifier> {
  const meta = (await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
  let cached: { until: number; keys: ReturnType<typeof createLocalJWKSet> } | undefined;
  return async (token) => {
    if (!cached || Date.now() >= cached.until) {
      const asked = Date.now();
      const res = await fetch(meta.jwks_uri);
      const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get("cache-control") ?? "")?.[1] ?? 0);
      cached = { until: asked + maxAge * 1000, keys: createLocalJWKSet((await res.json()) as JSONWebKeySet) };
    }
    try {
      await jwtVerify(token, cached.keys, { issuer: meta.issuer, audience: AUDIENCE, algorithms: ["ES256"] });
      return true;
    } catch {
      return false;
    }
  };
}

let server: Server | undefined;
async function expressVerifier(): Promise<Verifier> {
  const app = express();
  app.get("/api", auth({ issuerBaseURL: ISSUER, audience: AUDIENCE, tokenSigningAlg: "ES256", cacheMaxAge: CACHE_MS }), (req, res) => {
    res.json({ sub: req.auth?.payload.sub });
  });
  server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server!.once("listening", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  return async (token) => (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status === 200;
}

const PY = `
import json, sys, urllib.request, jwt
issuer, audience, lifespan = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta = json.load(urllib.request.urlopen(issuer + "/.well-known/openid-configuration"))
client = jwt.PyJWKClient(meta["jwks_uri"], cache_jwk_set=True, lifespan=lifespan)
print("ready", flush=True)
for line in sys.stdin:
    token = line.strip()
    try:
        key = client.get_signing_key_from_jwt(token)
        jwt.decode(token, key.key, algorithms=meta["access_token_signing_alg_values_supported"], audience=audience, issuer=meta["issuer"])
        print("ok", flush=True)
    except Exception as e:
        print("fail " + type(e).__name__, flush=True)
`;
let python: ChildProcessWithoutNullStreams | undefined;
async function pyJwtVerifier(): Promise<Verifier> {
  python = spawn(PYTHON, ["-c", PY, ISSUER, AUDIENCE, String(CACHE_MS / 1000)]);
  const lines = createInterface({ input: python.stdout })[Symbol.asyncIterator]();
  expect((await lines.next()).value).toBe("ready");
  let queue = Promise.resolve(true);
  // One token at a time: each answer is the next line.
  return (token) => {
    queue = queue.then(async () => {
      python!.stdin.write(`${token}\n`);
      return (await lines.next()).value === "ok";
    });
    return queue;
  };
}

// ---- the run ----

beforeAll(async () => {
  // Secrets from .dev.vars (dev-setup writes them if missing); the ring's settings and a fresh ring
  // (no JWT_PRIVATE_KEY to start from) on the command line.
  prepareLocalApi(state);
  start(
    "wrangler",
    [
      "dev",
      "--port",
      String(PORT),
      "--persist-to",
      state,
      "--test-scheduled",
      ...["ISSUER", ISSUER, "SIGNING_KEYS", "rotating", "JWKS_MAX_AGE", "2", "KEY_PROPAGATION", "0", "JWT_PRIVATE_KEY", ""].flatMap((v, i, a) =>
        i % 2 ? [] : ["--var", `${v}:${a[i + 1]}`],
      ),
    ],
    { quiet: true },
  );
  await waitFor(`${ISSUER}/health`, "the API", 90);
}, 120_000);

afterAll(async () => {
  server?.close();
  python?.kill();
  stop();
  rmSync(state, { recursive: true, force: true });
});

describe("resource servers configured with the issuer URL alone", () => {
  it("verify every token through three rotations (two forced back to back, one by the cron), and refuse a retired key's tokens", async () => {
    // An operator and a user.
    const name = `op_${Date.now().toString(36)}`;
    expect((await api("POST", "/register", { username: name, password: "correct horse 42" })).status).toBe(201);
    const grant = spawnSync(process.execPath, ["scripts/admin-grant.mjs", name], { cwd: root, env: { ...env, EDGE_AUTH_PERSIST_TO: state }, encoding: "utf8" });
    expect(grant.status, grant.stderr).toBe(0);
    let admin = (await api("POST", "/login", { username: name, password: "correct horse 42" })).body.access_token as string;
    const user = (await api("POST", "/register", { username: `rs_${Date.now().toString(36)}`, password: "correct horse 42" })).body;
    let refreshToken = user.refresh_token as string;

    const ring = await api("GET", "/admin/keys", undefined, admin);
    expect(ring.status).toBe(200);
    expect(ring.body.keys.every((k: { origin: string }) => k.origin === "generated")).toBe(true);
    const [first] = ring.body.keys.filter((k: { state: string }) => k.state === "current").map((k: { kid: string }) => k.kid);

    const verifiers: Record<string, Verifier> = { strict: await cacheControlVerifier(), jose: await joseVerifier(), express: await expressVerifier() };
    expect(hasPyJwt || !needPyJwt, "PyJWT is missing from /usr/bin/python3 (apt-get install python3-jwt)").toBe(true);
    if (hasPyJwt) verifiers.pyjwt = await pyJwtVerifier();
    else console.warn("issuer.test: no PyJWT in /usr/bin/python3 (apt-get install python3-jwt); verifying without it");

    const tokens: string[] = [user.access_token];
    const failures: string[] = [];
    let checks = 0;
    /** A new token (by refresh, as a client does), then every token so far, by every verifier. */
    const tick = async () => {
      const res = await api("POST", "/refresh", { refresh_token: refreshToken });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      refreshToken = res.body.refresh_token;
      tokens.push(res.body.access_token);
      for (const token of tokens) {
        for (const [who, verify] of Object.entries(verifiers)) {
          checks++;
          if (!(await verify(token))) failures.push(`${who}: ${decodeProtectedHeader(token).kid} (token ${tokens.indexOf(token)})`);
        }
      }
    };
    const ticksFor = async (ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; ) {
        await tick();
        await sleep(250);
      }
    };
    const scheduled = () => fetch(`${ISSUER}/__scheduled?cron=${encodeURIComponent("*/10 * * * *")}`);
    const current = async () =>
      (await api("GET", "/admin/keys", undefined, admin)).body.keys.find((k: { state: string }) => k.state === "current").kid as string;

    await ticksFor(1500);

    /** Forces a rotation as soon as the API allows it, verifying all along; returns the refusals met first. */
    const forceRotation = async () => {
      let refused = 0;
      for (;;) {
        const res = await api("POST", "/admin/keys/rotate", { current_password: "correct horse 42" }, admin);
        if (res.status === 200) return { refused, rotated: res.body.rotated as { from: string; to: string } };
        expect(res.body.error, JSON.stringify(res.body)).toBe("key_not_ready");
        refused++;
        await tick();
      }
    };

    // Rotations 1 and 2, forced back to back: the second must wait until the key made by the first
    // has been published for the whole cache window.
    const one = await forceRotation();
    expect(one.rotated.from).toBe(first);
    const second = one.rotated.to;
    const two = await forceRotation();
    expect(two.rotated.from).toBe(second);
    expect(two.refused).toBeGreaterThan(0);
    const third = two.rotated.to;
    await scheduled();
    await ticksFor(2500);

    // Rotation 3, by the cron: the current key has signed for KEY_ROTATION_DAYS (its start moved back).
    d1(`UPDATE signing_keys SET activated_at = activated_at - ${31 * 86_400_000} WHERE state = 'current'`);
    await scheduled();
    for (let i = 0; (await current()) === third && i < 40; i++) await sleep(250);
    const fourth = await current();
    expect(fourth).not.toBe(third);
    await ticksFor(2500);

    const kids = new Set(tokens.map((t) => decodeProtectedHeader(t).kid));
    expect([...kids]).toEqual([first, second, third, fourth]);
    expect(failures).toEqual([]);
    expect(checks).toBeGreaterThan(100);
    console.log(`issuer.test: ${tokens.length} tokens from ${kids.size} keys, ${checks} verifications by ${Object.keys(verifiers).join(", ")}, 0 failed`);

    // An emergency: the first key is retired. Its tokens fail everywhere; the others still verify.
    expect((await api("POST", `/admin/keys/${first}/retire`, { current_password: "correct horse 42" }, admin)).status).toBe(200);
    const old = tokens.find((t) => decodeProtectedHeader(t).kid === first)!;
    const recent = tokens.at(-1)!;
    expect((await api("GET", "/protected", undefined, old)).status).toBe(401);
    await sleep(CACHE_MS + 500); // the verifiers' cached JWKS runs out
    for (const [who, verify] of Object.entries(verifiers)) {
      expect(await verify(old), `${who} accepted a retired key's token`).toBe(false);
      expect(await verify(recent), `${who} refused a valid token`).toBe(true);
    }
    // The API serves the retired key's holders a new token on refresh: nobody is signed out.
    admin = (await api("POST", "/login", { username: name, password: "correct horse 42" })).body.access_token;
    expect(decodeProtectedHeader(admin).kid).toBe(fourth);
  }, 180_000);
});
