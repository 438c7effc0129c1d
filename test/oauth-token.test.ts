import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createLocalJWKSet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { sha256Base64Url, toBase64Url } from "../src/encoding";
import { call, d1BatchAnswerLostOnce, decodeJwtPart, expectError, forgeToken, kvPutFailsOnce, registerUser, revokedEntries, sidOf } from "./helpers";
import { approvedCode, codeForm, createTestClient, tokenRequest } from "./oauth";

// The token endpoint (docs/oauth-server.md): a code's exchange with PKCE, refresh rotation on the
// grant's session, client_credentials, and what each refuses. Codes come from a real approval
// (test/oauth.ts approvedCode: authorize, then the app's approve as the signed-in user).

const grantRow = (id: string) =>
  env.DB.prepare("SELECT client_id, scope, resource, revoked_at FROM sessions WHERE id = ?").bind(id).first<Record<string, unknown>>();
const jwks = async () => createLocalJWKSet((await call("GET", "/.well-known/jwks.json")).body);
const refreshAt = (client: { id: string; secret?: string }, refresh_token: string, extra: Record<string, string> = {}, ip = "10.77.0.1") =>
  tokenRequest(
    { grant_type: "refresh_token", refresh_token, client_id: client.id, ...(client.secret ? { client_secret: client.secret } : {}), ...extra },
    { ip },
  );

describe("authorization_code", () => {
  it("exchanges a code once for an RFC 9068 access token, an ID token and a refresh token on a grant", async () => {
    const client = await createTestClient();
    const user = await registerUser({ email: `${crypto.randomUUID()}@example.com` });
    const code = await approvedCode(client, user, { scope: "openid profile email offline_access", nonce: "n-123" });
    const res = await tokenRequest(codeForm(client, code));
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toMatchObject({ token_type: "Bearer", expires_in: 900, scope: "openid profile email offline_access", refresh_token: expect.any(String) });

    const at = await jwtVerify(res.body.access_token, await jwks(), { issuer: env.ISSUER, audience: env.ISSUER, typ: "at+jwt" });
    expect(at.payload).toMatchObject({ sub: user.user.id, client_id: client.id, scope: "openid profile email offline_access", amr: ["pwd"] });
    expect(at.payload.auth_time).toEqual(expect.any(Number));
    expect(at.payload.roles).toBeUndefined(); // an app learns the user's id and its scopes, not the account's roles

    const id = await jwtVerify(res.body.id_token, await jwks(), { issuer: env.ISSUER, audience: client.id });
    const half = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(res.body.access_token))).slice(0, 16);
    expect(id.payload).toMatchObject({ sub: user.user.id, nonce: "n-123", azp: client.id, at_hash: toBase64Url(half), preferred_username: user.user.username });
    expect(id.payload.email).toBe(user.user.email);
    expect(id.payload.email_verified).toBe(false);

    expect(await grantRow(at.payload.sid as string)).toMatchObject({ client_id: client.id, scope: "openid profile email offline_access", revoked_at: null });
    // The API's own routes never take an app's token.
    expectError(await call("GET", "/me", { token: res.body.access_token }), 401, "invalid_token");
  });

  it("a code used twice is refused, and the tokens its first use gave die with the grant", async () => {
    const client = await createTestClient();
    const code = await approvedCode(client, await registerUser());
    const form = codeForm(client, code);
    const first = await tokenRequest(form);
    expect(first.status).toBe(200);
    const again = await tokenRequest(form);
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: "invalid_grant", error_description: expect.any(String) });
    const grant = sidOf(first.body.access_token);
    expect((await grantRow(grant))!.revoked_at).not.toBeNull();
    // Presented again by anyone else (who saw it in a log, say), it ends nothing.
    const other = await createTestClient();
    const again2 = await approvedCode(client, await registerUser());
    const form2 = { ...form, code: again2.code, code_verifier: again2.verifier };
    const second = await tokenRequest(form2);
    expect((await tokenRequest({ ...form2, client_id: other.id, redirect_uri: other.redirectUri })).body.error).toBe("invalid_grant");
    expect((await grantRow(sidOf(second.body.access_token)))!.revoked_at).toBeNull();
    expect((await revokedEntries("sid:")).has(grant)).toBe(true);
    expect((await refreshAt(client, first.body.refresh_token)).body.error).toBe("invalid_grant");
  });

  it("of two exchanges of one code at once, exactly one gets tokens", async () => {
    const client = await createTestClient();
    const code = await approvedCode(client, await registerUser());
    const form = codeForm(client, code);
    const answers = await Promise.all([tokenRequest(form), tokenRequest(form)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
  });

  it("PKCE: a missing verifier, a wrong one, or the challenge itself sent as verifier (plain) gets nothing, and leaves the code to its client", async () => {
    const client = await createTestClient();
    const code = await approvedCode(client, await registerUser());
    const base = { grant_type: "authorization_code", code: code.code, redirect_uri: client.redirectUri, client_id: client.id };
    expect((await tokenRequest(base)).body.error).toBe("invalid_request");
    expect((await tokenRequest({ ...base, code_verifier: `${code.verifier.slice(0, -1)}x` })).body.error).toBe("invalid_grant");
    expect((await tokenRequest({ ...base, code_verifier: await sha256Base64Url(code.verifier) })).body.error).toBe("invalid_grant");
    expect((await tokenRequest({ ...base, code_verifier: code.verifier })).status).toBe(200);
  });

  it("another client's code, another redirect_uri, or a resource other than the one granted gets nothing", async () => {
    const client = await createTestClient({ resources: ["https://mcp.example/mcp"] });
    const thief = await createTestClient({ redirectUris: [(await createTestClient()).redirectUri] });
    const code = await approvedCode(client, await registerUser(), { resource: "https://mcp.example/mcp" });
    const base = { grant_type: "authorization_code", code: code.code, redirect_uri: client.redirectUri, code_verifier: code.verifier };
    expect((await tokenRequest({ ...base, client_id: thief.id })).body.error).toBe("invalid_grant");
    expect((await tokenRequest({ ...base, client_id: client.id, redirect_uri: "https://app.example/other" })).body.error).toBe("invalid_grant");
    const ok = await tokenRequest({ ...base, client_id: client.id, resource: "https://mcp.example/mcp" });
    expect(ok.status, ok.text).toBe(200);
    expect(decodeJwtPart(ok.body.access_token, 1).aud).toBe("https://mcp.example/mcp");
  });

  it("a confidential client must authenticate: no secret, a wrong one, or a public client sending one is invalid_client (401)", async () => {
    const client = await createTestClient({ confidential: true });
    const code = await approvedCode(client, await registerUser());
    const base = { grant_type: "authorization_code", code: code.code, redirect_uri: client.redirectUri, code_verifier: code.verifier };
    const none = await tokenRequest({ ...base, client_id: client.id });
    expect(none.status).toBe(401);
    expect(none.body.error).toBe("invalid_client");
    const wrong = await tokenRequest(base, { basic: [client.id, "not-the-secret"] });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toMatch(/^Basic/);
    const pub = await createTestClient();
    expect((await tokenRequest({ ...base, client_id: pub.id, client_secret: "anything" })).status).toBe(401);
    expect((await tokenRequest(base, { basic: [client.id, client.secret!] })).status).toBe(200);
  });

  it("redirect_uri may be left out only where the client has exactly one (OAuth 2.1 4.1.3)", async () => {
    const single = await createTestClient();
    const one = await approvedCode(single, await registerUser());
    const ok = await tokenRequest({ grant_type: "authorization_code", code: one.code, code_verifier: one.verifier, client_id: single.id });
    expect(ok.status, ok.text).toBe(200);
    const several = await createTestClient({ redirectUris: ["https://app.example/callback", "https://app.example/other"] });
    const two = await approvedCode(several, await registerUser());
    const refused = await tokenRequest({ grant_type: "authorization_code", code: two.code, code_verifier: two.verifier, client_id: several.id });
    expect([refused.status, refused.body.error]).toEqual([400, "invalid_request"]);
  });

  it("an exchange whose answer was lost: the retry is refused and the grant it opened ends (nothing leaks); a new authorization works", async () => {
    const client = await createTestClient();
    const user = await registerUser();
    const code = await approvedCode(client, user, { scope: "openid offline_access" });
    const DB = d1BatchAnswerLostOnce();
    expectError(await tokenRequest(codeForm(client, code), { bindings: { DB } }), 500, "internal_error");
    const grant = await env.DB.prepare("SELECT grant_id FROM oauth_requests WHERE code_hash = ?")
      .bind(await sha256Base64Url(code.code))
      .first<{ grant_id: string }>();
    expect((await grantRow(grant!.grant_id))!.revoked_at).toBeNull(); // written: only the answer was lost
    const retry = await tokenRequest(codeForm(client, code), { bindings: { DB } });
    expect([retry.status, retry.body.error]).toEqual([400, "invalid_grant"]);
    expect((await grantRow(grant!.grant_id))!.revoked_at).not.toBeNull();
    const again = await approvedCode(client, user, { scope: "openid offline_access" });
    expect((await tokenRequest(codeForm(client, again))).status).toBe(200);
  });

  it("a reused code while KV fails: still invalid_grant, the grant ended in D1 at once and in KV after the answer", async () => {
    const client = await createTestClient();
    const code = await approvedCode(client, await registerUser());
    const first = await tokenRequest(codeForm(client, code));
    const grant = sidOf(first.body.access_token);
    const ctx = createExecutionContext();
    const reused = await tokenRequest(codeForm(client, code), { bindings: { REVOKED: kvPutFailsOnce() }, ctx });
    expect([reused.status, reused.body.error]).toEqual([400, "invalid_grant"]);
    expect((await grantRow(grant))!.revoked_at).not.toBeNull();
    expect((await revokedEntries("sid:")).has(grant)).toBe(false);
    await waitOnExecutionContext(ctx);
    expect((await revokedEntries("sid:")).has(grant)).toBe(true);
  });

  it("an expired code gets nothing, even from its own client with its verifier", async () => {
    const client = await createTestClient();
    const code = await approvedCode(client, await registerUser());
    await env.DB.prepare("UPDATE oauth_requests SET code_expires_at = ? WHERE code_hash = ?")
      .bind(Date.now() - 1, await sha256Base64Url(code.code))
      .run();
    const res = await tokenRequest(codeForm(client, code));
    expect([res.status, res.body.error]).toEqual([400, "invalid_grant"]);
  });

  it("no refresh token without offline_access for an OpenID request", async () => {
    const client = await createTestClient();
    const code = await approvedCode(client, await registerUser(), { scope: "openid profile" });
    const res = await tokenRequest(codeForm(client, code));
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toBeUndefined();
  });
});

async function grantWithRefresh(opts: Parameters<typeof approvedCode>[2] = {}, clientOpts: Parameters<typeof createTestClient>[0] = {}) {
  const client = await createTestClient(clientOpts);
  const user = await registerUser();
  const code = await approvedCode(client, user, { scope: "openid profile offline_access", ...opts });
  const res = await tokenRequest(codeForm(client, code));
  expect(res.status, res.text).toBe(200);
  return { client, user, tokens: res.body as { access_token: string; refresh_token: string } };
}

describe("refresh_token", () => {
  it("rotates: the new token works, a retry by the same client gets the same successor, a replay by another ends the grant", async () => {
    const { client, tokens } = await grantWithRefresh();
    const next = await refreshAt(client, tokens.refresh_token);
    expect(next.status, next.text).toBe(200);
    expect(next.body.refresh_token).not.toBe(tokens.refresh_token);
    expect(next.body.id_token).toBeUndefined();
    const retry = await refreshAt(client, tokens.refresh_token);
    expect(retry.body.refresh_token).toBe(next.body.refresh_token);
    const thief = await refreshAt(client, tokens.refresh_token, {}, "10.66.6.6");
    expect(thief.body.error).toBe("invalid_grant");
    expect((await refreshAt(client, next.body.refresh_token)).body.error).toBe("invalid_grant");
    expect((await grantRow(sidOf(tokens.access_token)))!.revoked_at).not.toBeNull();
  });

  it("may narrow the scope, never widen it or change the resource; a refused one leaves the token usable", async () => {
    const { client, tokens } = await grantWithRefresh({ resource: "https://api.example/" }, { resources: ["https://api.example/", "https://other.example/"] });
    const wider = await refreshAt(client, tokens.refresh_token, { scope: "openid profile email offline_access" });
    expect(wider.body.error).toBe("invalid_scope");
    const elsewhere = await refreshAt(client, tokens.refresh_token, { resource: "https://other.example/" });
    expect(elsewhere.body.error).toBe("invalid_target");
    const narrower = await refreshAt(client, tokens.refresh_token, { scope: "profile" });
    expect(narrower.status, narrower.text).toBe(200);
    expect(narrower.body.scope).toBe("profile");
    expect(decodeJwtPart(narrower.body.access_token, 1)).toMatchObject({ scope: "profile", aud: "https://api.example/" });
    // The grant keeps what was granted: the next refresh without a scope gets all of it back.
    expect((await refreshAt(client, narrower.body.refresh_token)).body.scope).toBe("openid profile offline_access");
  });

  it("a grant's refresh token is only its client's: not another client's, not the API's own /refresh; and the reverse", async () => {
    const { client, user, tokens } = await grantWithRefresh();
    const other = await createTestClient();
    expect((await refreshAt(other, tokens.refresh_token, {}, "10.77.0.1")).body.error).toBe("invalid_grant");
    expectError(await call("POST", "/refresh", { body: { refresh_token: tokens.refresh_token } }), 401, "invalid_token");
    expect((await refreshAt(client, user.refresh_token)).body.error).toBe("invalid_grant");
    expect((await refreshAt(client, tokens.refresh_token)).status).toBe(200);
  });

  it("a grant past its end refreshes no more, and its client's disabling or its user's ends it too", async () => {
    const { client, tokens } = await grantWithRefresh();
    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1, sidOf(tokens.access_token))
      .run();
    expect((await refreshAt(client, tokens.refresh_token)).body.error).toBe("invalid_grant");
    const disabledUser = await grantWithRefresh();
    await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), disabledUser.user.user.id).run();
    expect((await refreshAt(disabledUser.client, disabledUser.tokens.refresh_token)).body.error).toBe("invalid_grant");
  });

  it("gives out only what the client may still have: a scope withdrawn is dropped, a resource withdrawn ends the grant", async () => {
    const { client, tokens } = await grantWithRefresh({ resource: "https://api.example/" }, { resources: ["https://api.example/"] });
    await env.DB.prepare("UPDATE oauth_clients SET scope = 'openid offline_access' WHERE id = ?").bind(client.id).run();
    const narrowed = await refreshAt(client, tokens.refresh_token, { resource: "https://api.example/" });
    expect(narrowed.status, narrowed.text).toBe(200);
    expect(narrowed.body.scope).toBe("openid offline_access");
    await env.DB.prepare(`UPDATE oauth_clients SET resources = '[]' WHERE id = ?`).bind(client.id).run();
    expect((await refreshAt(client, narrowed.body.refresh_token)).body.error).toBe("invalid_grant");
    expect((await grantRow(sidOf(tokens.access_token)))!.revoked_at).not.toBeNull();
  });

  it("a client not allowed the refresh_token grant is refused before anything rotates", async () => {
    const { client, tokens } = await grantWithRefresh();
    await env.DB.prepare(`UPDATE oauth_clients SET grant_types = '["authorization_code"]' WHERE id = ?`).bind(client.id).run();
    expect((await refreshAt(client, tokens.refresh_token)).body.error).toBe("unauthorized_client");
  });
});

describe("client_credentials", () => {
  it("gives a confidential machine client a token for itself, with its own scopes only", async () => {
    const client = await createTestClient({
      confidential: true,
      grantTypes: ["client_credentials"],
      scope: "openid reports:read",
      resources: ["https://api.example/"],
    });
    const bindings = { OAUTH_SCOPES: "reports:read" };
    const res = await tokenRequest({ grant_type: "client_credentials", resource: "https://api.example/" }, { basic: [client.id, client.secret!], bindings });
    expect(res.status, res.text).toBe(200);
    expect(res.body.refresh_token).toBeUndefined();
    expect(decodeJwtPart(res.body.access_token, 1)).toMatchObject({ sub: client.id, client_id: client.id, scope: "reports:read", aud: "https://api.example/" });
    expect(decodeJwtPart(res.body.access_token, 1).sid).toBeUndefined();
    const oidc = await tokenRequest({ grant_type: "client_credentials", scope: "openid" }, { basic: [client.id, client.secret!], bindings });
    expect(oidc.body.error).toBe("invalid_scope");
    const foreign = await tokenRequest(
      { grant_type: "client_credentials", resource: "https://evil.example/" },
      { basic: [client.id, client.secret!], bindings },
    );
    expect(foreign.body.error).toBe("invalid_target");
  });

  it("is refused to a public client and to one not allowed it", async () => {
    const pub = await createTestClient({ grantTypes: ["client_credentials"] });
    expect((await tokenRequest({ grant_type: "client_credentials", client_id: pub.id })).body.error).toBe("unauthorized_client");
    const conf = await createTestClient({ confidential: true });
    expect((await tokenRequest({ grant_type: "client_credentials" }, { basic: [conf.id, conf.secret!] })).body.error).toBe("unauthorized_client");
    expect((await tokenRequest({ grant_type: "password" }, { basic: [conf.id, conf.secret!] })).body.error).toBe("unsupported_grant_type");
  });
});

describe("revocation and userinfo", () => {
  it("revoking the refresh token or the access token ends the grant; another client's or an unknown token changes nothing", async () => {
    for (const which of ["refresh_token", "access_token"] as const) {
      const { client, tokens } = await grantWithRefresh({ scope: "openid offline_access" });
      const other = await createTestClient();
      expect((await tokenRequest({ token: tokens[which], client_id: other.id }, { path: "/oauth2/revoke" })).status).toBe(200);
      expect((await call("GET", "/oauth2/userinfo", { token: tokens.access_token })).status).toBe(200);
      expect((await tokenRequest({ token: "unknown-token", client_id: client.id }, { path: "/oauth2/revoke" })).status).toBe(200);
      expect((await tokenRequest({ token: tokens[which], client_id: client.id }, { path: "/oauth2/revoke" })).status).toBe(200);
      expect((await refreshAt(client, tokens.refresh_token)).body.error).toBe("invalid_grant");
      const after = await call("GET", "/oauth2/userinfo", { token: tokens.access_token });
      expect(after.status).toBe(401);
      expect(after.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token"/);
    }
  });

  it("userinfo answers with the claims the scope allows, needs openid, and takes only a token for this issuer", async () => {
    const { tokens, user } = await grantWithRefresh({ scope: "openid profile offline_access" });
    const info = await call("GET", "/oauth2/userinfo", { token: tokens.access_token });
    expect(info.body).toEqual({ sub: user.user.id, preferred_username: user.user.username });
    const noOpenId = await grantWithRefresh({ scope: "profile offline_access" });
    expect((await call("POST", "/oauth2/userinfo", { token: noOpenId.tokens.access_token })).status).toBe(403);
    const forResource = await grantWithRefresh({ scope: "openid offline_access", resource: "https://api.example/" }, { resources: ["https://api.example/"] });
    expect((await call("GET", "/oauth2/userinfo", { token: forResource.tokens.access_token })).status).toBe(401);
    // The API's own token is not an app's: userinfo refuses it.
    expect((await call("GET", "/oauth2/userinfo", { token: user.access_token })).status).toBe(401);
  });

  it("the API's own routes refuse a token with a client_id even when it names the API's audience", async () => {
    // GET /protected answers from the token alone: the same token without client_id passes there.
    expect((await call("GET", "/protected", { token: await forgeToken() })).status).toBe(200);
    const forged = await forgeToken({ claims: { client_id: "some-app", scope: "openid" } });
    expectError(await call("GET", "/protected", { token: forged }), 401, "invalid_token");
  });
});
