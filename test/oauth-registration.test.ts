import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { housekeeping } from "../src/cron";
import { sha256Base64Url } from "../src/encoding";
import { call, inOneLimiterWindow, registerUser } from "./helpers";
import { approvedCode, codeForm, tokenRequest } from "./oauth";

// Dynamic client registration (RFC 7591, docs/oauth-server.md): the deployment's policy, what a
// self-registered app may be, lapsing registrations, and the bounds on what anonymous callers grow.

const OPEN = { OAUTH_REGISTRATION: "open" } as Partial<Env>;
const register = (body: unknown, opts: { bindings?: Partial<Env>; token?: string; ip?: string } = {}) =>
  call("POST", "/oauth2/register", {
    body,
    bindings: opts.bindings ?? OPEN,
    token: opts.token,
    headers: opts.ip ? { "cf-connecting-ip": opts.ip } : undefined,
  });
const app = {
  redirect_uris: ["http://127.0.0.1:33418/callback"],
  client_name: "CLI Agent",
  token_endpoint_auth_method: "none",
  grant_types: ["authorization_code", "refresh_token"],
};
const clientRow = (id: string) =>
  env.DB.prepare("SELECT source, expires_at, first_token_at, secret_hash FROM oauth_clients WHERE id = ?").bind(id).first<Record<string, unknown>>();

describe("the policy", () => {
  it("closed by default: refused, and the metadata names no registration endpoint", async () => {
    const res = await call("POST", "/oauth2/register", { body: app });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe("access_denied");
    expect((await call("GET", "/.well-known/oauth-authorization-server")).body.registration_endpoint).toBeUndefined();
    expect((await call("GET", "/.well-known/oauth-authorization-server", { bindings: OPEN })).body.registration_endpoint).toBe(`${env.ISSUER}/oauth2/register`);
  });

  it("token: only with an initial access token whose SHA-256 is configured", async () => {
    const token = "initial-access-token-for-a-partner-0123456789";
    const bindings = { OAUTH_REGISTRATION: "token", OAUTH_REGISTRATION_TOKENS: await sha256Base64Url(token) } as Partial<Env>;
    const none = await register(app, { bindings });
    expect([none.status, none.body.error]).toEqual([401, "invalid_token"]);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token"/);
    expect((await register(app, { bindings, token: `${token}x` })).status).toBe(401);
    expect((await register(app, { bindings, token })).status).toBe(201);
  });
});

describe("a self-registered app", () => {
  it("public: an id and no secret; it lapses unless it gets a token, which keeps it", async () => {
    const res = await register(app);
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      client_name: "CLI Agent",
      token_endpoint_auth_method: "none",
      redirect_uris: app.redirect_uris,
      response_types: ["code"],
    });
    expect(res.body.client_secret).toBeUndefined();
    const row = await clientRow(res.body.client_id);
    expect(row).toMatchObject({ source: "dynamic", first_token_at: null, secret_hash: null });
    expect(row!.expires_at).toBeGreaterThan(Date.now() + 86_000_000);

    const client = { id: res.body.client_id as string, redirectUri: app.redirect_uris[0]! };
    const code = await approvedCode(client, await registerUser(), { scope: "openid offline_access" });
    const tokens = await tokenRequest(codeForm(client, code));
    expect(tokens.status, tokens.text).toBe(200);
    expect((await clientRow(client.id))!.first_token_at).not.toBeNull();
    // Past the lapse time, the cron keeps it: it got a token.
    const later = new Date(Date.now() + 2 * 86_400_000);
    await housekeeping(env, later);
    expect(await clientRow(client.id)).not.toBeNull();
  });

  it("a registration that got no token is refused once lapsed, and the cron removes it", async () => {
    const res = await register(app);
    const client = { id: res.body.client_id as string, redirectUri: app.redirect_uris[0]! };
    const code = await approvedCode(client, await registerUser());
    await env.DB.prepare("UPDATE oauth_clients SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1000, client.id)
      .run();
    await expect(approvedCode(client, await registerUser())).rejects.toThrow(/authorize answered 400/);
    const tokens = await tokenRequest(codeForm(client, code));
    expect([tokens.status, tokens.body.error]).toEqual([401, "invalid_client"]);
    expect((await housekeeping(env)).lapsedClients).toBeGreaterThanOrEqual(1);
    expect(await clientRow(client.id)).toBeNull();
  });

  it("confidential by default (RFC 7591): its secret is shown once and authenticates it", async () => {
    const res = await register({ redirect_uris: ["https://partner.example/cb"], client_name: "Partner" });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ token_endpoint_auth_method: "client_secret_basic", client_secret: expect.any(String), client_secret_expires_at: 0 });
    expect((await clientRow(res.body.client_id))!.secret_hash).toBe(await sha256Base64Url(res.body.client_secret));
    const client = { id: res.body.client_id as string, redirectUri: "https://partner.example/cb" };
    const code = await approvedCode(client, await registerUser());
    const base = { grant_type: "authorization_code", code: code.code, redirect_uri: client.redirectUri, code_verifier: code.verifier };
    expect((await tokenRequest({ ...base, client_id: client.id })).status).toBe(401);
    expect((await tokenRequest(base, { basic: [client.id, res.body.client_secret] })).status).toBe(200);
  });

  it("is shown to the person as unverified: its name and site are its own claims", async () => {
    const res = await register(app);
    const user = await registerUser();
    const q = new URLSearchParams({
      response_type: "code",
      client_id: res.body.client_id,
      redirect_uri: app.redirect_uris[0]!,
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
    });
    const id = new URLSearchParams(new URL((await call("GET", `/oauth2/authorize?${q}`)).headers.get("location")!).hash.slice(1)).get("authorize")!;
    expect((await call("GET", `/oauth2/requests/${id}`, { token: user.access_token })).body.client).toMatchObject({ name: "CLI Agent", verified: false });
  });

  it("shows a site on the consent page only where its codes go (an https redirect's origin)", async () => {
    const claimed = await register({ ...app, redirect_uris: ["https://tool.example/cb"], client_uri: "https://famous.example/" });
    expect(claimed.body.client_uri).toBeUndefined();
    const own = await register({ ...app, redirect_uris: ["https://tool.example/cb"], client_uri: "https://tool.example/about" });
    expect(own.body.client_uri).toBe("https://tool.example/about");
  });

  it.each([
    ["an http redirect on a public host", { redirect_uris: ["http://evil.example/cb"] }, "invalid_redirect_uri"],
    ["a redirect with a fragment", { redirect_uris: ["https://app.example/cb#x"] }, "invalid_redirect_uri"],
    ["no redirect URI", { redirect_uris: [] }, "invalid_redirect_uri"],
    ["client_credentials (no user would consent)", { ...app, grant_types: ["client_credentials"] }, "invalid_client_metadata"],
    ["an implicit response type", { ...app, response_types: ["token"] }, "invalid_client_metadata"],
    ["a scope the deployment does not know", { ...app, scope: "openid admin:everything" }, "invalid_client_metadata"],
    ["a client_uri that is not http(s)", { ...app, client_uri: "javascript:alert(1)" }, "invalid_client_metadata"],
    ["an unknown authentication method", { ...app, token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
  ])("refuses %s with the protocol's code, storing nothing", async (_what, body, code) => {
    const before = await env.DB.prepare("SELECT count(*) AS n FROM oauth_clients").first<{ n: number }>();
    const res = await register(body);
    expect([res.status, res.body.error]).toEqual([400, code]);
    expect(res.body.error_description).toEqual(expect.any(String));
    expect(await env.DB.prepare("SELECT count(*) AS n FROM oauth_clients").first<{ n: number }>()).toEqual(before);
  });
});

describe("bounds on what anonymous callers grow", () => {
  it("a flood from one address is rate limited (429 with Retry-After)", { timeout: 30_000 }, async () => {
    await inOneLimiterWindow();
    const ip = "10.123.45.67";
    const answers = [];
    for (let i = 0; i < 11; i++) answers.push((await register(app, { ip })).status);
    expect(answers.slice(0, 10).every((s) => s === 201)).toBe(true);
    const refused = await register(app, { ip });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
  });

  it("at most 10,000 registrations may wait for their first token: then 429, storing nothing", async () => {
    const now = Date.now();
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
       INSERT INTO oauth_clients (id, name, redirect_uris, grant_types, scope, resources, source, created_at, expires_at)
       SELECT 'flood-' || i, 'Flood', '[]', '["authorization_code"]', 'openid', '[]', 'dynamic', ?, ? FROM n`,
    )
      .bind(now, now + 86_400_000)
      .run();
    const res = await register(app);
    expect([res.status, res.body.error]).toEqual([429, "temporarily_unavailable"]);
    // Lapsed registrations count no more: a flood blocks registration only while it waits, not until the cron.
    await env.DB.prepare("UPDATE oauth_clients SET expires_at = ? WHERE id LIKE 'flood-%'")
      .bind(now - 1)
      .run();
    expect((await register(app)).status).toBe(201);
    await env.DB.prepare("DELETE FROM oauth_clients WHERE id LIKE 'flood-%'").run();
    expect((await register(app)).status).toBe(201);
  });
});
