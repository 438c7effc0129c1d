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
import { jsonApi, prepareLocalApi, wranglerEnv } from "./local-api";

/**
 * The authorization server (docs/oauth-server.md) seen by libraries that know only the standards: a
 * real `wrangler dev`, openid-client as the relying party (discovery from the issuer URL, code + PKCE
 * S256 with state and nonce, the id_token, userinfo, refresh rotation and reuse, revocation) and
 * express-oauth2-jwt-bearer with `strict: true` (RFC 9068) as the resource server the tokens are for.
 * The apps are registered by an admin through the admin API. The person's part (signing in, seeing
 * what is asked, approving) is done as an app's consent page does it: through the API, with the
 * request id the authorization endpoint put in the app's URL.
 */
const PORT = 8795; // issuer 8794, demo-ports 8797/8798, e2e 8790: none shared
const ISSUER = `http://localhost:${PORT}`;
const APP_URL = "http://localhost:5199/"; // the app's page: never served, only read from Location
const OTHER_RESOURCE = "https://other.example/api"; // allowed by the deployment, never granted here
const PASSWORD = "correct horse 42";

const env = wranglerEnv;
const state = mkdtempSync(path.join(tmpdir(), "oauth-server-"));
const b64url = (b: Buffer) => b.toString("base64url");

const api = jsonApi(ISSUER);

/** An admin of this deployment (npm run admin:grant), signed in: registers the apps through the admin API. */
let admin = "";
async function makeAdmin() {
  const username = `op_${Date.now().toString(36)}`;
  expect((await api("POST", "/register", { username, password: PASSWORD })).status).toBe(201);
  const grant = spawnSync(process.execPath, ["scripts/admin-grant.mjs", username], {
    cwd: root,
    env: { ...env, EDGE_AUTH_PERSIST_TO: state },
    encoding: "utf8",
  });
  expect(grant.status, grant.stderr).toBe(0);
  // Roles come with a sign-in: sign in again to act as an admin.
  const login = await api("POST", "/login", { username, password: PASSWORD });
  expect(login.status, JSON.stringify(login.body)).toBe(200);
  admin = login.body.access_token;
}

/** An app registered by the admin (POST /admin/clients, with the admin's step-up): its id, name and, when confidential, its secret. */
async function registerClient(opts: { type: "public" | "confidential"; redirectUris: string[]; scope: string }) {
  const name = `Notes ${b64url(randomBytes(6))}`;
  const res = await api(
    "POST",
    "/admin/clients",
    { name, uri: "https://notes.example/", redirect_uris: opts.redirectUris, type: opts.type, scope: opts.scope, current_password: PASSWORD },
    admin,
  );
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(Boolean(res.body.client_secret)).toBe(opts.type === "confidential");
  return { id: res.body.client_id as string, name, uri: res.body.uri as string, secret: res.body.client_secret as string | undefined };
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
    // A 401 with a WWW-Authenticate challenge (invalid_client, invalid_token): the code is in the body.
    if (e instanceof client.WWWAuthenticateChallengeError)
      return ((await e.response.json().catch(() => null)) as { error?: string } | null)?.error ?? e.cause[0]?.parameters.error ?? "challenge";
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
  prepareLocalApi(state);
  const vars = { ISSUER, APP_URL, OAUTH_SCOPES: "notes:read notes:write", OAUTH_RESOURCES: `${RESOURCE} ${OTHER_RESOURCE}` };
  start("wrangler", ["dev", "--port", String(PORT), "--persist-to", state, ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])], {
    quiet: true,
  });
  await waitFor(`${ISSUER}/health`, "the API", 90);
  await makeAdmin();
}, 120_000);

afterAll(async () => {
  server?.close();
  stop();
  rmSync(state, { recursive: true, force: true });
});

const discover = (id: string, secret?: string) =>
  client.discovery(new URL(ISSUER), id, secret, secret ? client.ClientSecretBasic(secret) : client.None(), { execute: [client.allowInsecureRequests] });

/** An authorization URL with a fresh PKCE pair (S256), state and nonce, as openid-client builds it. */
async function authorization(config: client.Configuration, params: Record<string, string>) {
  const verifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    state: expectedState,
    nonce: expectedNonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    ...params,
  });
  return { url, checks: { pkceCodeVerifier: verifier, expectedState, expectedNonce } };
}

/**
 * A request the authorization endpoint refuses after it knows the client and its redirect_uri: the
 * browser goes back to the app (never to the consent page) with the error, its state and iss (RFC
 * 9207), which openid-client checks before reporting the error. Answers the error code.
 */
async function refusedAtAuthorization(config: client.Configuration, url: URL) {
  const res = await fetch(url, { redirect: "manual" });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get("location")!);
  expect(back.href.startsWith(url.searchParams.get("redirect_uri")!)).toBe(true);
  expect(back.searchParams.get("iss")).toBe(ISSUER);
  try {
    await client.authorizationCodeGrant(config, back, { expectedState: url.searchParams.get("state") ?? undefined });
  } catch (e) {
    if (e instanceof client.AuthorizationResponseError) return e.error;
    throw e;
  }
  throw new Error("the authorization endpoint answered a code");
}

describe("openid-client as a relying party, express-oauth2-jwt-bearer as the resource server", () => {
  it("discovery lists the code flow alone: S256 only, iss in responses, no implicit or password grant; other response types are refused", async () => {
    const rp = await registerClient({ type: "confidential", redirectUris: ["https://notes.example/callback"], scope: "openid" });
    const config = await discover(rp.id, rp.secret);
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(ISSUER);
    expect(meta.response_types_supported).toEqual(["code"]);
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(["authorization_code", "refresh_token"]));
    expect(meta.grant_types_supported).not.toContain("implicit");
    expect(meta.grant_types_supported).not.toContain("password");
    expect(meta.supportsPKCE()).toBe(true);
    expect(meta.code_challenge_methods_supported).toEqual(["S256"]);
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(["client_secret_basic", "client_secret_post", "none"]));
    expect(meta.id_token_signing_alg_values_supported).toEqual(["ES256"]);
    expect(meta.scopes_supported).toEqual(expect.arrayContaining(["openid", "profile", "email", "offline_access"]));
    for (const endpoint of ["authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint", "jwks_uri"] as const)
      expect(meta[endpoint], endpoint).toMatch(new RegExp(`^${ISSUER}/`));
    // The RFC 8414 document says the same.
    const oauthMeta = await client.discovery(new URL(ISSUER), rp.id, rp.secret, undefined, { algorithm: "oauth2", execute: [client.allowInsecureRequests] });
    expect(oauthMeta.serverMetadata().token_endpoint).toBe(meta.token_endpoint);

    for (const responseType of ["token", "id_token", "code id_token"]) {
      const { url } = await authorization(config, { redirect_uri: "https://notes.example/callback", scope: "openid", response_type: responseType });
      expect(await refusedAtAuthorization(config, url), responseType).toBe("unsupported_response_type");
    }
  }, 60_000);

  it("a confidential client: code + PKCE with state and nonce, the id_token and userinfo; a code used twice ends its grant; refresh rotates; revocation takes the client's secret and ends the grant", async () => {
    const redirectUri = "https://notes.example/callback";
    const scope = "openid profile email offline_access";
    const rp = await registerClient({ type: "confidential", redirectUris: [redirectUri], scope });
    const config = await discover(rp.id, rp.secret);
    const alice = await person("rp_alice");

    // A scope beyond the client's registration is refused, never dropped.
    expect(await refusedAtAuthorization(config, (await authorization(config, { redirect_uri: redirectUri, scope: `${scope} notes:read` })).url)).toBe(
      "invalid_scope",
    );

    const first = await authorization(config, { redirect_uri: redirectUri, scope });
    const { asked, redirectTo } = await consent(first.url, alice);
    expect(asked.client).toMatchObject({ id: rp.id, name: rp.name, uri: rp.uri });
    expect(asked.scopes.map((s: { name: string }) => s.name)).toEqual(scope.split(" "));
    expect(asked.scopes.every((s: { description: string }) => s.description.length > 0)).toBe(true); // in words, for the person
    expect(asked.resource).toBeNull();
    expect(asked.redirect_origin).toBe("https://notes.example");
    expect(asked.consent_remembered).toBe(false);
    expect(redirectTo.searchParams.get("iss")).toBe(ISSUER);

    // A state that is not this browser's is refused by the client before any exchange.
    await expect(client.authorizationCodeGrant(config, redirectTo, { ...first.checks, expectedState: client.randomState() })).rejects.toThrow();
    // openid-client checks iss, state, then the id_token: its signature (JWKS), iss, aud, exp and nonce.
    const tokens = await client.authorizationCodeGrant(config, redirectTo, { ...first.checks, idTokenExpected: true });
    expect(tokens.token_type.toLowerCase()).toBe("bearer");
    expect(tokens.scope?.split(" ").sort()).toEqual(scope.split(" ").sort());
    expect(tokens.refresh_token).toBeTruthy();
    const idToken = tokens.claims()!;
    expect(idToken).toMatchObject({
      iss: ISSUER,
      sub: alice.id,
      aud: rp.id,
      nonce: first.checks.expectedNonce,
      preferred_username: alice.username,
      email: alice.email,
      email_verified: false,
      amr: ["pwd"],
    });
    expect(typeof idToken.auth_time).toBe("number");
    expect(idToken.at_hash).toBe(b64url(createHash("sha256").update(tokens.access_token).digest().subarray(0, 16)));

    // The access token: RFC 9068, for this issuer (no resource asked); the API's own routes refuse it,
    // and so does the resource server (its audience is another).
    expect(decodeProtectedHeader(tokens.access_token).typ).toBe("at+jwt");
    const access = decodeJwt(tokens.access_token);
    expect(access).toMatchObject({ iss: ISSUER, sub: alice.id, aud: ISSUER, client_id: rp.id, scope, auth_time: idToken.auth_time, amr: ["pwd"] });
    expect(typeof access.jti).toBe("string");
    expect(typeof access.sid).toBe("string");
    expect((await api("GET", "/me", undefined, tokens.access_token)).status).toBe(401);
    expect((await resourceServer("/api/whoami", tokens.access_token)).status).toBe(401);

    const info = await client.fetchUserInfo(config, tokens.access_token, idToken.sub);
    expect(info).toMatchObject({ sub: alice.id, preferred_username: alice.username, email: alice.email, email_verified: false });
    await expect(client.fetchUserInfo(config, tokens.access_token, "someone-else")).rejects.toThrow();

    // The code again: refused, and the grant it opened ends (its refresh and access tokens with it).
    expect(await refusal(client.authorizationCodeGrant(config, redirectTo, first.checks))).toBe("invalid_grant");
    expect(await refusal(client.refreshTokenGrant(config, tokens.refresh_token!))).toBe("invalid_grant");
    await expect(client.fetchUserInfo(config, tokens.access_token, alice.id)).rejects.toThrow();

    // A new grant: the consent is remembered, the person still approves through the app.
    const second = await authorization(config, { redirect_uri: redirectUri, scope });
    const again = await consent(second.url, alice);
    expect(again.asked.consent_remembered).toBe(true);
    const grant = await client.authorizationCodeGrant(config, again.redirectTo, second.checks);
    const sid = decodeJwt(grant.access_token).sid;
    expect(sid).not.toBe(access.sid);

    // Refresh rotates: a new refresh token each time, an access token of the same grant.
    const r0 = grant.refresh_token!;
    const one = await client.refreshTokenGrant(config, r0);
    const r1 = one.refresh_token!;
    expect(r1).toBeTruthy();
    expect(r1).not.toBe(r0);
    expect(decodeJwt(one.access_token)).toMatchObject({ sub: alice.id, client_id: rp.id, sid, scope });

    // Without its secret the client gets nothing, and revokes nothing.
    const impostor = await discover(rp.id, b64url(randomBytes(32)));
    expect(await refusal(client.refreshTokenGrant(impostor, r1))).toBe("invalid_client");
    expect(await refusal(client.tokenRevocation(impostor, r1))).toBe("invalid_client");
    const two = await client.refreshTokenGrant(config, r1);
    const r2 = two.refresh_token!;
    expect(r2).not.toBe(r1);
    expect((await client.fetchUserInfo(config, two.access_token, alice.id)).sub).toBe(alice.id);

    // Revocation (RFC 7009) with the secret ends the grant: no refresh, and its access tokens are refused.
    await client.tokenRevocation(config, r2);
    expect(await refusal(client.refreshTokenGrant(config, r2))).toBe("invalid_grant");
    await expect(client.fetchUserInfo(config, two.access_token, alice.id)).rejects.toThrow();
    // Revoking what this server never issued is not an error (RFC 7009 2.2).
    await client.tokenRevocation(config, "not-a-token-this-server-issued");
  }, 120_000);

  it("a public client on a loopback redirect: PKCE S256 required; a token for a resource, accepted there (strict RFC 9068) and nowhere else; scope and resource never widen; a replayed refresh token ends the grant", async () => {
    // A native app: its registered loopback redirect, on any port (RFC 8252 7.3).
    const rp = await registerClient({ type: "public", redirectUris: ["http://127.0.0.1/callback"], scope: "openid offline_access notes:read notes:write" });
    const config = await discover(rp.id);
    const redirectUri = "http://127.0.0.1:49152/callback";
    const scope = "openid offline_access notes:read";
    const bob = await person("rp_bob");

    // No PKCE, or PKCE plain: refused before anyone is asked.
    const noPkce = await authorization(config, { redirect_uri: redirectUri, scope, resource: RESOURCE });
    noPkce.url.searchParams.delete("code_challenge");
    noPkce.url.searchParams.delete("code_challenge_method");
    expect(await refusedAtAuthorization(config, noPkce.url)).toBe("invalid_request");
    const plain = await authorization(config, { redirect_uri: redirectUri, scope, resource: RESOURCE });
    plain.url.searchParams.set("code_challenge", plain.checks.pkceCodeVerifier);
    plain.url.searchParams.set("code_challenge_method", "plain");
    expect(await refusedAtAuthorization(config, plain.url)).toBe("invalid_request");

    const { url, checks } = await authorization(config, { redirect_uri: redirectUri, scope, resource: RESOURCE });
    const { asked, redirectTo } = await consent(url, bob);
    expect(asked.resource).toBe(RESOURCE);
    expect(asked.scopes.map((s: { name: string }) => s.name)).toEqual(scope.split(" "));
    expect(`${redirectTo.origin}${redirectTo.pathname}`).toBe(redirectUri);

    // The wrong verifier gets no token.
    expect(await refusal(client.authorizationCodeGrant(config, redirectTo, { ...checks, pkceCodeVerifier: client.randomPKCECodeVerifier() }))).toBe(
      "invalid_grant",
    );
    const tokens = await client.authorizationCodeGrant(config, redirectTo, checks);
    expect(tokens.claims()).toMatchObject({ iss: ISSUER, sub: bob.id, aud: rp.id, nonce: checks.expectedNonce });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ iss: ISSUER, sub: bob.id, aud: RESOURCE, client_id: rp.id, scope });

    // The resource server (strict: typ at+jwt, client_id, jti, iat and sub required) accepts it, scope
    // checked; a resource server of another audience refuses it, and so does the API itself.
    expect(await resourceServer("/api/notes", tokens.access_token)).toEqual({ status: 200, body: { sub: bob.id, client_id: rp.id } });
    expect((await resourceServer("/other", tokens.access_token)).status).toBe(401);
    expect((await api("GET", "/me", undefined, tokens.access_token)).status).toBe(401);

    // A refresh cannot widen the scope or move to another resource; a refused one rotates nothing.
    const r0 = tokens.refresh_token!;
    expect(await refusal(client.refreshTokenGrant(config, r0, { scope: `${scope} notes:write` }))).toBe("invalid_scope");
    expect(await refusal(client.refreshTokenGrant(config, r0, { resource: OTHER_RESOURCE }))).toBe("invalid_target");
    // A narrower token is allowed: the resource server's scope check then refuses it.
    const narrow = await client.refreshTokenGrant(config, r0, { scope: "openid offline_access", resource: RESOURCE });
    expect(decodeJwt(narrow.access_token)).toMatchObject({ aud: RESOURCE, scope: "openid offline_access" });
    expect((await resourceServer("/api/whoami", narrow.access_token)).status).toBe(200);
    expect((await resourceServer("/api/notes", narrow.access_token)).status).toBe(403);

    // r0 again, from another client (another User-Agent: the retry grace is only for the client that
    // rotated it): a stolen token. The grant ends, and the app's newest refresh token with it.
    const r1 = narrow.refresh_token!;
    const r2 = (await client.refreshTokenGrant(config, r1)).refresh_token!;
    expect(r2).not.toBe(r1);
    const thief = await discover(rp.id);
    thief[client.customFetch] = (input, init) =>
      fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init.headers)), "user-agent": "thief/1.0" } });
    expect(await refusal(client.refreshTokenGrant(thief, r0))).toBe("invalid_grant");
    expect(await refusal(client.refreshTokenGrant(config, r2))).toBe("invalid_grant");
  }, 120_000);
});
