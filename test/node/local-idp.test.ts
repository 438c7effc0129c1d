import { createHash, randomBytes } from "node:crypto";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module (scripts/ are JavaScript)
import { driveLogin, startLocalIdp } from "../../scripts/local-idp.mjs";

/**
 * scripts/local-idp.mjs, which the workerd and e2e tests sign in through: the real oidc-provider's
 * code flow driven over HTTP, the crafted issuer's checks, the GitHub stand-in's scenarios.
 */

const CALLBACK = "http://localhost:8787/oauth/local/callback";
const random = () => randomBytes(16).toString("base64url");
const basic = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;
const form = (fields: Record<string, string>) => new URLSearchParams(fields);
let idp: Awaited<ReturnType<typeof startLocalIdp>>;
const discover = async (issuer: string) => (await fetch(`${issuer}/.well-known/openid-configuration`)).json();

beforeAll(async () => {
  idp = await startLocalIdp({ redirectUris: [CALLBACK] });
});
afterAll(() => idp?.close());

describe("the local OpenID provider", () => {
  it("serves discovery for both issuers at their own paths", async () => {
    expect(idp.oidc).toBe(`${idp.origin}/oidc`);
    const oidc = await discover(idp.oidc);
    expect(oidc.issuer).toBe(idp.oidc);
    expect(oidc.authorization_endpoint).toBe(`${idp.oidc}/auth`);
    expect(oidc.code_challenge_methods_supported).toEqual(["S256"]);
    expect((await discover(idp.crafted)).issuer).toBe(`${idp.origin}/crafted`);
  });

  it.each([
    ["alice", true],
    ["unverified-bob", false],
  ])("signs %s in through its login and consent pages (code flow, PKCE); userinfo says email_verified %s", async (login, verified) => {
    const meta = await discover(idp.oidc);
    const [state, nonce, verifier] = [random(), random(), random() + random()];
    const authorize = new URL(meta.authorization_endpoint);
    authorize.search = form({
      client_id: idp.clientId,
      response_type: "code",
      redirect_uri: CALLBACK,
      scope: "openid email profile",
      state,
      nonce,
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    }).toString();

    const back = new URL(await driveLogin(authorize.href, login));
    expect(back.origin + back.pathname).toBe(CALLBACK);
    expect(back.searchParams.get("state")).toBe(state);
    expect(back.searchParams.get("iss")).toBe(idp.oidc);
    const code = back.searchParams.get("code");
    expect(code).toBeTruthy();

    const tokenAt = (code_verifier: string) =>
      fetch(meta.token_endpoint, {
        method: "POST",
        headers: { authorization: basic(idp.clientId, idp.clientSecret) },
        body: form({ grant_type: "authorization_code", code: code!, redirect_uri: CALLBACK, code_verifier }),
      });
    // PKCE is enforced: a wrong verifier is refused (checked before the code is consumed, so the right one still works).
    expect((await (await tokenAt(`${verifier}x`)).json()).error).toBe("invalid_grant");
    const tokens = await (await tokenAt(verifier)).json();
    expect(tokens.token_type).toBe("Bearer");

    const { payload } = await jwtVerify(tokens.id_token, createRemoteJWKSet(new URL(meta.jwks_uri)), { issuer: idp.oidc, audience: idp.clientId });
    expect(payload).toMatchObject({ sub: login, nonce });
    // conformIdTokenClaims: with an access token issued, the email claims come from userinfo only.
    expect(payload.email).toBeUndefined();

    const userinfo = await (await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
    expect(userinfo).toEqual({ sub: login, email: `${login}@example.test`, email_verified: verified, name: login, preferred_username: login });
  });
});

describe("the crafted issuer", () => {
  const token = (code: string, secret = idp.clientSecret) =>
    fetch(`${idp.crafted}/token`, {
      method: "POST",
      headers: { authorization: basic(idp.clientId, secret) },
      body: form({ grant_type: "authorization_code", code, code_verifier: random(), redirect_uri: CALLBACK }),
    });

  it("refuses a wrong client secret", async () => {
    const res = await token("good.n-1", "wrong-secret");
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "invalid_client" });
  });

  it("signs `good` with its published key, `other_key` not, and dates `expired` in the past", async () => {
    const jwks = createRemoteJWKSet(new URL(`${idp.crafted}/jwks`));
    const good = (await (await token("good.n-2")).json()).id_token;
    const { payload } = await jwtVerify(good, jwks, { issuer: idp.crafted, audience: idp.clientId });
    expect(payload).toMatchObject({ sub: "crafted-user", nonce: "n-2", email_verified: true });
    await expect(jwtVerify((await (await token("other_key.n-3")).json()).id_token, jwks)).rejects.toThrow();
    const expired = decodeJwt((await (await token("expired.n-4")).json()).id_token);
    expect(expired.exp).toBeLessThan(Date.now() / 1000);
  });
});

describe("the GitHub stand-in", () => {
  it("passes the scenario from authorize to token to /user/emails: `secondary` has its primary address unverified", async () => {
    const authorize = await fetch(`${idp.github}/login/oauth/authorize?scenario=secondary&state=s-1&redirect_uri=${encodeURIComponent(CALLBACK)}`, {
      redirect: "manual",
    });
    const back = new URL(authorize.headers.get("location")!);
    expect(back.searchParams.get("state")).toBe("s-1");
    const exchange = (client_secret: string) =>
      fetch(`${idp.github}/login/oauth/access_token`, {
        method: "POST",
        headers: { accept: "application/json" },
        body: form({ client_id: idp.clientId, client_secret, code: back.searchParams.get("code")!, redirect_uri: CALLBACK, code_verifier: random() }),
      }).then((r) => r.json());
    expect(await exchange("wrong")).toEqual({ error: "incorrect_client_credentials" });
    const { access_token } = await exchange(idp.clientSecret);

    const api = (path: string, auth = `Bearer ${access_token}`) => fetch(`${idp.github}/api${path}`, { headers: { authorization: auth } });
    expect(await (await api("/user")).json()).toMatchObject({ id: 4244, login: "octo-secondary", email: null });
    const emails = await (await api("/user/emails")).json();
    expect(emails.find((e: { primary: boolean }) => e.primary)).toMatchObject({ email: "octo-secondary@example.test", verified: false });
    expect(emails.find((e: { primary: boolean }) => !e.primary)).toMatchObject({ email: "other@example.test", verified: true });
    expect((await api("/user", "Bearer gho_nobody")).status).toBe(401);
  });
});
