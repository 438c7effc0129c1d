import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import express from "express";
import { auth, requiredScopes } from "express-oauth2-jwt-bearer";
import { decodeJwt, decodeProtectedHeader } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module shared with `npm run demo` and the e2e setup
import { root, start, stop, waitFor } from "../../scripts/servers.mjs";

/**
 * The authorization server (docs/oauth-server.md) seen by libraries that know only the standards: a
 * real `wrangler dev`, openid-client as the relying party (discovery from the issuer URL, code + PKCE
 * S256 with state and nonce, the id_token, userinfo, refresh rotation and reuse, revocation) and
 * express-oauth2-jwt-bearer with `strict: true` (RFC 9068) as the resource server the tokens are for.
 * The person's part (signing in, seeing what is asked, approving) is done as an app's consent page
 * does it: through the API, with the request id the authorization endpoint put in the app's URL.
 */
const PORT = 8795; // issuer 8794, demo-ports 8797/8798, e2e 8790: none shared
const ISSUER = `http://localhost:${PORT}`;
const APP_URL = "http://localhost:5199/"; // the app's page: never served, only read from Location
const OTHER_RESOURCE = "https://other.example/api"; // allowed by the deployment, never granted here
const PASSWORD = "correct horse 42";

const env = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", PATH: path.join(root, "node_modules", ".bin") + path.delimiter + process.env.PATH };
const state = mkdtempSync(path.join(tmpdir(), "oauth-server-"));
const d1 = (sql: string) => {
  const run = spawnSync("wrangler", ["d1", "execute", "DB", "--local", "--persist-to", state, "--command", sql], { cwd: root, env, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`d1 execute failed: ${run.stderr}`);
};
const b64url = (b: Buffer) => b.toString("base64url");

async function api(method: string, p: string, body?: unknown, token?: string) {
  const res = await fetch(`${ISSUER}${p}`, {
    method,
    headers: { ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

/**
 * A registered client, written as an admin's registration is (the admin API is tested in
 * test/oauth-clients.test.ts): the secret, when confidential, stored only as its SHA-256.
 */
function registerClient(opts: { confidential: boolean; redirectUris: string[]; scope: string; resources?: string[] }) {
  const id = `rp_${b64url(randomBytes(9))}`;
  const secret = opts.confidential ? b64url(randomBytes(32)) : undefined;
  const hash = secret ? `'${b64url(createHash("sha256").update(secret).digest())}'` : "NULL";
  const json = (v: unknown) => `'${JSON.stringify(v)}'`;
  d1(
    "INSERT INTO oauth_clients (id, name, uri, redirect_uris, secret_hash, grant_types, scope, resources, source, created_at) VALUES " +
      `('${id}', 'Notes for ${id}', 'https://notes.example/', ${json(opts.redirectUris)}, ${hash}, ${json(["authorization_code", "refresh_token"])}, ` +
      `'${opts.scope}', ${json(opts.resources ?? [])}, 'admin', ${Date.now()})`,
  );
  return { id, secret };
}

/** A person who just signed up in the first-party app (a password sign-in): its access token and user id. */
async function person(prefix: string) {
  const username = `${prefix}_${Date.now().toString(36)}`;
  const email = `${username}@example.com`;
  const reg = await api("POST", "/register", { username, email, password: PASSWORD });
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  return { username, email, id: reg.body.user.id as string, token: reg.body.access_token as string };
}

/**
 * The browser's trip to the authorization endpoint and the app's consent page: the endpoint sends the
 * browser to APP_URL#authorize=<id>; the app, signed in as `who`, reads what is asked and approves.
 * Answers what was asked and the redirect_uri (with code, state, iss) the app sends the browser to.
 */
async function consent(authorizationUrl: URL, who: { token: string }) {
  const res = await fetch(authorizationUrl, { redirect: "manual" });
  expect(res.status, await res.clone().text()).toBe(302);
  const location = new URL(res.headers.get("location")!);
  expect(`${location.origin}${location.pathname}`).toBe(APP_URL);
  const id = new URLSearchParams(location.hash.slice(1)).get("authorize");
  expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const asked = await api("GET", `/oauth2/requests/${id}`, undefined, who.token);
  expect(asked.status, JSON.stringify(asked.body)).toBe(200);
  const approved = await api("POST", `/oauth2/requests/${id}/approve`, undefined, who.token);
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  // Single use: approving again (a replayed or double-clicked consent) gives nothing.
  expect((await api("POST", `/oauth2/requests/${id}/approve`, undefined, who.token)).status).toBeGreaterThanOrEqual(400);
  return { asked: asked.body, redirectTo: new URL(approved.body.redirect_to as string) };
}

/** The protocol error code a rejected openid-client call met (RFC 6749 5.2), or a failure if it succeeded. */
async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (e) {
    if (e instanceof client.ResponseBodyError) return e.error;
    throw e;
  }
  throw new Error("the call succeeded; a refusal was expected");
}

// ---- the resource server: express-oauth2-jwt-bearer given only the issuer URL and its audience ----

let server: Server | undefined;
let RESOURCE = ""; // this resource server's URL: the `resource` apps ask for, and so their tokens' aud

/** Listens first (its port makes its URL), then mounts the verifiers: one for its own audience, one for another. */
async function startResourceServer() {
  const app = express();
  server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server!.once("listening", r));
  RESOURCE = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  const verify = (audience: string) => auth({ issuerBaseURL: ISSUER, audience, tokenSigningAlg: "ES256", strict: true });
  app.get("/api/notes", verify(RESOURCE), requiredScopes("notes:read"), (req, res) => {
    res.json({ sub: req.auth?.payload.sub, client_id: req.auth?.payload.client_id });
  });
  app.get("/api/whoami", verify(RESOURCE), (req, res) => {
    res.json({ sub: req.auth?.payload.sub });
  });
  app.get("/other", verify(OTHER_RESOURCE), (_req, res) => {
    res.json({ ok: true });
  });
}
const resourceServer = async (p: string, token: string) => {
  const res = await fetch(new URL(p, RESOURCE), { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
};

beforeAll(async () => {
  await startResourceServer();
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { cwd: root, env, encoding: "utf8" });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}${migrate.stderr}`);
  spawnSync(process.execPath, ["scripts/dev-setup.mjs"], { cwd: root, stdio: "ignore", env });
  const vars = { ISSUER, APP_URL, OAUTH_SCOPES: "notes:read notes:write", OAUTH_RESOURCES: `${RESOURCE} ${OTHER_RESOURCE}` };
  start("wrangler", ["dev", "--port", String(PORT), "--persist-to", state, ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])], {
    quiet: true,
  });
  await waitFor(`${ISSUER}/health`, "the API", 90);
}, 120_000);

afterAll(async () => {
  server?.close();
  stop();
  rmSync(state, { recursive: true, force: true });
});

const discover = (id: string, secret?: string) =>
  client.discovery(new URL(ISSUER), id, secret, secret ? client.ClientSecretBasic(secret) : client.None(), { execute: [client.allowInsecureRequests] });

describe("openid-client as a relying party, express-oauth2-jwt-bearer as the resource server", () => {
  it("a confidential client: discovery, code + PKCE with state and nonce, the id_token, userinfo, refresh rotation and a replay that ends the grant", async () => {
    const redirectUri = "https://notes.example/callback";
    const rp = registerClient({ confidential: true, redirectUris: [redirectUri], scope: "openid profile email offline_access" });
    const config = await discover(rp.id, rp.secret);
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(ISSUER);
    expect(meta.supportsPKCE()).toBe(true); // S256 listed
    expect(meta.code_challenge_methods_supported).toEqual(["S256"]);
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    expect(meta.revocation_endpoint).toBe(`${ISSUER}/oauth2/revoke`);

    const alice = await person("rp_alice");
    const verifier = client.randomPKCECodeVerifier();
    const expectedState = client.randomState();
    const expectedNonce = client.randomNonce();
    const scope = "openid profile email offline_access";
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      state: expectedState,
      nonce: expectedNonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    });
    const { asked, redirectTo } = await consent(url, alice);
    expect(asked.client).toMatchObject({ id: rp.id, name: `Notes for ${rp.id}`, uri: "https://notes.example/" });
    expect(asked.scopes).toEqual(scope.split(" "));
    expect(asked.resource).toBeNull();
    expect(asked.redirect_origin).toBe("https://notes.example");
    expect(asked.consent_remembered).toBe(false);
    expect(redirectTo.searchParams.get("iss")).toBe(ISSUER);

    // A wrong state or PKCE verifier never reaches a token (the client refuses, then the server does).
    await expect(
      client.authorizationCodeGrant(config, redirectTo, { pkceCodeVerifier: verifier, expectedState: client.randomState(), expectedNonce }),
    ).rejects.toThrow();
    // openid-client checks iss, state, PKCE and the id_token (signature by the JWKS, iss, aud, nonce, exp).
    const tokens = await client.authorizationCodeGrant(config, redirectTo, { pkceCodeVerifier: verifier, expectedState, expectedNonce, idTokenExpected: true });
    expect(tokens.token_type.toLowerCase()).toBe("bearer");
    expect(tokens.scope?.split(" ").sort()).toEqual(scope.split(" ").sort());
    expect(tokens.refresh_token).toBeTruthy();
    const idToken = tokens.claims()!;
    expect(idToken).toMatchObject({ iss: ISSUER, sub: alice.id, aud: rp.id, nonce: expectedNonce, preferred_username: alice.username, email: alice.email });
    expect(idToken.email_verified).toBe(false);
    expect(typeof idToken.auth_time).toBe("number");
    expect(idToken.amr).toEqual(["pwd"]);
    expect(idToken.at_hash).toBe(b64url(createHash("sha256").update(tokens.access_token).digest().subarray(0, 16)));

    // The access token: RFC 9068, for this issuer (no resource asked), not for the API's own routes.
    expect(decodeProtectedHeader(tokens.access_token).typ).toBe("at+jwt");
    const access = decodeJwt(tokens.access_token);
    expect(access).toMatchObject({ iss: ISSUER, sub: alice.id, aud: ISSUER, client_id: rp.id, scope });
    expect(typeof access.jti).toBe("string");
    expect(typeof access.sid).toBe("string");
    expect((await api("GET", "/me", undefined, tokens.access_token)).status).toBe(401);
    // Nor for the resource server: its audience is another.
    expect((await resourceServer("/api/whoami", tokens.access_token)).status).toBe(401);

    const info = await client.fetchUserInfo(config, tokens.access_token, idToken.sub);
    expect(info).toMatchObject({ sub: alice.id, preferred_username: alice.username, email: alice.email, email_verified: false });
    // A subject that is not the id_token's is refused by the client.
    await expect(client.fetchUserInfo(config, tokens.access_token, "someone-else")).rejects.toThrow();

    // The code is single use.
    expect(await refusal(client.authorizationCodeGrant(config, redirectTo, { pkceCodeVerifier: verifier, expectedState, expectedNonce }))).toBe(
      "invalid_grant",
    );
    // ...and its second use ended the grant it opened: start a new one.
    const again = client.randomPKCECodeVerifier();
    const second = await consent(
      client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope,
        state: expectedState,
        nonce: expectedNonce,
        code_challenge: await client.calculatePKCECodeChallenge(again),
        code_challenge_method: "S256",
      }),
      alice,
    );
    expect(second.asked.consent_remembered).toBe(true);
    const grant = await client.authorizationCodeGrant(config, second.redirectTo, { pkceCodeVerifier: again, expectedState, expectedNonce });
    expect(decodeJwt(tokens.access_token).sid).not.toBe(decodeJwt(grant.access_token).sid);

    // Refresh rotates: each answer has a new refresh token, an access token for the same grant.
    const r0 = grant.refresh_token!;
    const one = await client.refreshTokenGrant(config, r0);
    const r1 = one.refresh_token!;
    expect(r1).toBeTruthy();
    expect(r1).not.toBe(r0);
    expect(decodeJwt(one.access_token)).toMatchObject({ sub: alice.id, client_id: rp.id, sid: decodeJwt(grant.access_token).sid });
    const two = await client.refreshTokenGrant(config, r1);
    const r2 = two.refresh_token!;
    expect(r2).not.toBe(r1);
    expect((await client.fetchUserInfo(config, two.access_token, alice.id)).sub).toBe(alice.id);

    // r0 again, its successor already rotated on (so no retry grace applies): theft. The grant ends,
    // the newest refresh token with it, and its access tokens are refused.
    expect(await refusal(client.refreshTokenGrant(config, r0))).toBe("invalid_grant");
    expect(await refusal(client.refreshTokenGrant(config, r2))).toBe("invalid_grant");
    await expect(client.fetchUserInfo(config, two.access_token, alice.id)).rejects.toThrow();
  }, 120_000);

  it("a public client on a loopback redirect: a token for a resource, accepted there (strict RFC 9068) and nowhere else; scope and resource never widen; revocation ends the grant", async () => {
    // A native app: its registered loopback redirect, any port (RFC 8252 7.3).
    const rp = registerClient({ confidential: false, redirectUris: ["http://127.0.0.1/callback"], scope: "openid offline_access notes:read notes:write" });
    const config = await discover(rp.id);
    const redirectUri = "http://127.0.0.1:49152/callback";
    const bob = await person("rp_bob");
    const verifier = client.randomPKCECodeVerifier();
    const expectedState = client.randomState();
    const scope = "openid offline_access notes:read";
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      resource: RESOURCE,
      state: expectedState,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    });
    const { asked, redirectTo } = await consent(url, bob);
    expect(asked.resource).toBe(RESOURCE);
    expect(asked.scopes).toEqual(scope.split(" "));
    expect(`${redirectTo.origin}${redirectTo.pathname}`).toBe(redirectUri);

    const tokens = await client.authorizationCodeGrant(config, redirectTo, { pkceCodeVerifier: verifier, expectedState, idTokenExpected: true });
    expect(tokens.claims()).toMatchObject({ iss: ISSUER, sub: bob.id, aud: rp.id });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ iss: ISSUER, sub: bob.id, aud: RESOURCE, client_id: rp.id, scope });

    // The resource server (strict: typ at+jwt, client_id, jti, iat, sub required) accepts it, with its scope...
    expect(await resourceServer("/api/notes", tokens.access_token)).toEqual({ status: 200, body: { sub: bob.id, client_id: rp.id } });
    // ...another resource server refuses it, and so does the API itself.
    expect((await resourceServer("/other", tokens.access_token)).status).toBe(401);
    expect((await api("GET", "/me", undefined, tokens.access_token)).status).toBe(401);

    // A refresh cannot widen the scope or move to another resource; a refused one rotates nothing.
    const r0 = tokens.refresh_token!;
    expect(await refusal(client.refreshTokenGrant(config, r0, { scope: "openid offline_access notes:read notes:write" }))).toBe("invalid_scope");
    expect(await refusal(client.refreshTokenGrant(config, r0, { resource: OTHER_RESOURCE }))).toBe("invalid_target");
    // A narrower scope for one token is allowed: the resource server's scope check then refuses it.
    const narrow = await client.refreshTokenGrant(config, r0, { scope: "openid offline_access", resource: RESOURCE });
    expect(decodeJwt(narrow.access_token)).toMatchObject({ aud: RESOURCE, scope: "openid offline_access" });
    expect((await resourceServer("/api/whoami", narrow.access_token)).status).toBe(200);
    expect((await resourceServer("/api/notes", narrow.access_token)).status).toBe(403);

    // Revocation (RFC 7009) of the refresh token ends the grant: no more refreshes. Revoking an unknown
    // token is not an error (RFC 7009 2.2).
    await client.tokenRevocation(config, narrow.refresh_token!);
    expect(await refusal(client.refreshTokenGrant(config, narrow.refresh_token!))).toBe("invalid_grant");
    await client.tokenRevocation(config, "not-a-token-this-server-issued");
  }, 120_000);
});
