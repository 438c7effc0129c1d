import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Base64Url } from "../src/encoding";
import { type ApiResponse, type CallOptions, call, inOneLimiterWindow } from "./helpers";
import { createTestClient, pkce } from "./oauth";

/** GET /oauth2/authorize (docs/oauth-server.md): what is refused in place, what goes back to the app, what is kept. */

type Params = Record<string, string | string[] | undefined>;

function query(params: Params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of v === undefined ? [] : [v].flat()) q.append(k, one);
  return q.toString();
}

const authorizeCall = (params: Params, opts: CallOptions = {}) => call("GET", `/oauth2/authorize?${query(params)}`, opts);

/** A valid request for `client`, with these parameters changed (undefined: left out). */
async function valid(client: { id: string; redirectUri: string }, changes: Params = {}): Promise<Params> {
  const { challenge } = await pkce();
  return {
    response_type: "code",
    client_id: client.id,
    redirect_uri: client.redirectUri,
    state: "st-123",
    scope: "openid profile",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...changes,
  };
}

/** A refusal answered in place: 400 in the protocol's shape, and no redirect anywhere. */
function expectRefusedInPlace(res: ApiResponse, error = "invalid_request") {
  expect(res.status, res.text).toBe(400);
  expect(res.headers.get("location")).toBeNull();
  expect(res.body).toMatchObject({ error, error_description: expect.any(String) });
}

/** A refusal sent back to the app: a 302 to the redirect_uri with error, state and iss. */
function expectRedirectedError(res: ApiResponse, redirectUri: string, error: string, state: string | null = "st-123") {
  expect(res.status, res.text).toBe(302);
  const location = new URL(res.headers.get("location")!);
  expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
  expect(location.searchParams.get("error")).toBe(error);
  expect(location.searchParams.get("error_description")).toBeTruthy();
  expect(location.searchParams.get("state")).toBe(state);
  expect(location.searchParams.get("iss")).toBe(env.ISSUER);
  expect(location.searchParams.get("code")).toBeNull();
}

/** The request id handed to the app page, from a successful answer's Location. */
function requestIdOf(res: ApiResponse) {
  expect(res.status, res.text).toBe(302);
  const location = res.headers.get("location")!;
  expect(location.startsWith(`${env.APP_URL}#authorize=`), location).toBe(true);
  const id = new URLSearchParams(new URL(location).hash.slice(1)).get("authorize")!;
  expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return id;
}

const rowsFor = async (clientId: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM oauth_requests WHERE client_id = ?").bind(clientId).first<{ n: number }>())!.n;

describe("an accepted request", () => {
  it("is kept under the SHA-256 of its id, and the browser goes to the app page with the id in the fragment", async () => {
    const client = await createTestClient();
    const params = await valid(client, { nonce: "n-1", prompt: "login consent", max_age: "300" });
    const before = Date.now();
    const res = await authorizeCall(params);
    const id = requestIdOf(res);
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(await env.DB.prepare("SELECT id FROM oauth_requests WHERE id = ?").bind(id).first()).toBeNull(); // never the id itself
    const row = await env.DB.prepare("SELECT * FROM oauth_requests WHERE id = ?")
      .bind(await sha256Base64Url(id))
      .first<Record<string, unknown>>();
    expect(row).toMatchObject({
      client_id: client.id,
      redirect_uri: client.redirectUri,
      state: "st-123",
      scope: "openid profile",
      resource: null,
      code_challenge: params.code_challenge,
      nonce: "n-1",
      prompt: "login consent",
      max_age: 300,
      session_id: null,
      decided_at: null,
      code_hash: null,
    });
    expect(row!.expires_at as number).toBeGreaterThanOrEqual(before + 600_000);
    expect(row!.expires_at as number).toBeLessThan(Date.now() + 600_000 + 1000);
  });

  it("tells the app page prompt=none in the fragment (nobody signed in there: login_required at once), and nothing else", async () => {
    const client = await createTestClient();
    const silent = new URL((await authorizeCall(await valid(client, { prompt: "none" }))).headers.get("location")!);
    expect(new URLSearchParams(silent.hash.slice(1)).get("prompt")).toBe("none");
    const asked = new URL((await authorizeCall(await valid(client, { prompt: "login", state: "secret-state" }))).headers.get("location")!);
    expect([...new URLSearchParams(asked.hash.slice(1)).keys()]).toEqual(["authorize"]);
  });

  it("grants the client's registered scopes when none is asked, and takes the only redirect_uri when none is given", async () => {
    const client = await createTestClient({ scope: "openid email" });
    const id = requestIdOf(await authorizeCall(await valid(client, { scope: undefined, redirect_uri: undefined })));
    const row = await env.DB.prepare("SELECT scope, redirect_uri FROM oauth_requests WHERE id = ?")
      .bind(await sha256Base64Url(id))
      .first();
    expect(row).toEqual({ scope: "openid email", redirect_uri: client.redirectUri });
  });

  it("keeps a resource the deployment allows, normalized", async () => {
    const client = await createTestClient();
    const bindings = { OAUTH_RESOURCES: "https://api.example.com/v1" };
    const id = requestIdOf(await authorizeCall(await valid(client, { resource: "https://API.example.com/v1" }), { bindings }));
    const row = await env.DB.prepare("SELECT resource FROM oauth_requests WHERE id = ?")
      .bind(await sha256Base64Url(id))
      .first();
    expect(row).toEqual({ resource: "https://api.example.com/v1" });
  });

  it("answers 500 internal_error (config_invalid in the log), never a redirect, when APP_URL is not set", async () => {
    const client = await createTestClient();
    const res = await authorizeCall(await valid(client), { bindings: { APP_URL: "" } });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ error: "internal_error" });
    expect(res.headers.get("location")).toBeNull();
    expect(await rowsFor(client.id)).toBe(0);
  });
});

describe("refused in place, never redirected", () => {
  it("an unknown, missing or disabled client", async () => {
    const client = await createTestClient();
    expectRefusedInPlace(await authorizeCall(await valid(client, { client_id: "nobody" })));
    expectRefusedInPlace(await authorizeCall(await valid(client, { client_id: undefined })));
    await env.DB.prepare("UPDATE oauth_clients SET disabled_at = ? WHERE id = ?").bind(Date.now(), client.id).run();
    expectRefusedInPlace(await authorizeCall(await valid(client)));
    expect(await rowsFor(client.id)).toBe(0);
  });

  it("a redirect_uri that is not exactly a registered one", async () => {
    const client = await createTestClient();
    for (const redirect_uri of [
      "https://evil.example/callback",
      "https://app.example/callback/",
      "https://app.example/callbackx",
      "https://app.example/callback?next=https://evil.example",
      "https://app.example/callback#x",
      "https://app.example:8443/callback",
      "http://app.example/callback",
      "https://APP.example/callback",
      "https://app.example/other/../callback",
      "https://user@app.example/callback",
      "not a url",
      "",
    ]) {
      // Even with other errors in the request, nothing goes to an unverified address.
      expectRefusedInPlace(await authorizeCall(await valid(client, { redirect_uri })));
      expectRefusedInPlace(await authorizeCall(await valid(client, { redirect_uri, response_type: "token" })));
    }
    expect(await rowsFor(client.id)).toBe(0);
  });

  it("no redirect_uri when the client has several", async () => {
    const client = await createTestClient({ redirectUris: ["https://app.example/a", "https://app.example/b"] });
    expectRefusedInPlace(await authorizeCall(await valid(client, { redirect_uri: undefined })));
  });

  it("a loopback redirect on another port only for a loopback http registration, with host and path as registered", async () => {
    const native = await createTestClient({ redirectUris: ["http://127.0.0.1:8000/cb"] });
    const id = requestIdOf(await authorizeCall(await valid(native, { redirect_uri: "http://127.0.0.1:51234/cb" })));
    const row = await env.DB.prepare("SELECT redirect_uri FROM oauth_requests WHERE id = ?")
      .bind(await sha256Base64Url(id))
      .first();
    expect(row).toEqual({ redirect_uri: "http://127.0.0.1:51234/cb" }); // the exchange must present this one
    for (const redirect_uri of ["http://127.0.0.1:51234/other", "http://[::1]:51234/cb", "http://localhost:51234/cb", "https://127.0.0.1:51234/cb"]) {
      expectRefusedInPlace(await authorizeCall(await valid(native, { redirect_uri })));
    }
    const tls = await createTestClient({ redirectUris: ["https://127.0.0.1:8000/cb"] });
    expectRefusedInPlace(await authorizeCall(await valid(tls, { redirect_uri: "https://127.0.0.1:9000/cb" })));
    const web = await createTestClient({ redirectUris: ["http://app.example:8000/cb"] });
    expectRefusedInPlace(await authorizeCall(await valid(web, { redirect_uri: "http://app.example:9000/cb" })));
  });

  it("a parameter given twice", async () => {
    const client = await createTestClient();
    expectRefusedInPlace(await authorizeCall(await valid(client, { client_id: [client.id, client.id] })));
  });
});

describe("refused back to the app, with state and iss", () => {
  it("without PKCE, with plain, with no method, or with a malformed challenge", async () => {
    const client = await createTestClient({ confidential: true });
    const cases: Params[] = [
      { code_challenge: undefined },
      { code_challenge_method: "plain" },
      { code_challenge_method: "s256" },
      { code_challenge_method: undefined },
      { code_challenge: "a".repeat(42) },
      { code_challenge: "a".repeat(44) },
      { code_challenge: `${"a".repeat(42)}+` },
      { code_challenge: `${"a".repeat(42)}=` },
    ];
    for (const changes of cases) expectRedirectedError(await authorizeCall(await valid(client, changes)), client.redirectUri, "invalid_request");
    expect(await rowsFor(client.id)).toBe(0);
  });

  it("a response_type other than code", async () => {
    const client = await createTestClient();
    for (const response_type of ["token", "id_token", "code id_token", "CODE"])
      expectRedirectedError(await authorizeCall(await valid(client, { response_type })), client.redirectUri, "unsupported_response_type");
    expectRedirectedError(await authorizeCall(await valid(client, { response_type: undefined })), client.redirectUri, "invalid_request");
  });

  it("a client that may not use codes", async () => {
    const client = await createTestClient({ confidential: true, grantTypes: ["client_credentials"] });
    expectRedirectedError(await authorizeCall(await valid(client)), client.redirectUri, "unauthorized_client");
  });

  it("a scope beyond the client's, or one the deployment does not know", async () => {
    const client = await createTestClient({ scope: "openid profile" });
    for (const scope of ["openid email", "admin", "openid profile offline_access"])
      expectRedirectedError(await authorizeCall(await valid(client, { scope })), client.redirectUri, "invalid_scope");
    const unknown = await createTestClient({ scope: "openid billing:read" });
    expectRedirectedError(await authorizeCall(await valid(unknown, { scope: "billing:read" })), unknown.redirectUri, "invalid_scope");
    expect(await rowsFor(client.id)).toBe(0);
  });

  it("a resource that is not allowed, not absolute, more than one, or the API's own audience", async () => {
    const client = await createTestClient();
    const bindings = { OAUTH_RESOURCES: "https://api.example.com/v1" };
    for (const resource of [
      "https://evil.example/",
      "https://api.example.com/v2",
      "https://api.example.com/v1#x",
      "/v1",
      env.AUDIENCE,
      ["https://api.example.com/v1", "https://api.example.com/v1"],
    ]) {
      expectRedirectedError(await authorizeCall(await valid(client, { resource }), { bindings }), client.redirectUri, "invalid_target");
    }
    // Allowed by the deployment only while it says so.
    expectRedirectedError(await authorizeCall(await valid(client, { resource: "https://api.example.com/v1" })), client.redirectUri, "invalid_target");
    expect(await rowsFor(client.id)).toBe(0);
  });

  it("prompt values that are unknown or combine none, and a max_age that is no non-negative integer", async () => {
    const client = await createTestClient();
    for (const prompt of ["select_account", "none login", "none consent", "LOGIN"])
      expectRedirectedError(await authorizeCall(await valid(client, { prompt })), client.redirectUri, "invalid_request");
    for (const max_age of ["-1", "1.5", "abc", "", "1e3", "99999999999"])
      expectRedirectedError(await authorizeCall(await valid(client, { max_age })), client.redirectUri, "invalid_request");
    requestIdOf(await authorizeCall(await valid(client, { max_age: "0", prompt: "none" })));
  });

  it("an over-long state (not echoed back) or nonce", async () => {
    const client = await createTestClient();
    expectRedirectedError(await authorizeCall(await valid(client, { state: "s".repeat(1025) })), client.redirectUri, "invalid_request", null);
    expectRedirectedError(await authorizeCall(await valid(client, { nonce: "n".repeat(513) })), client.redirectUri, "invalid_request");
    requestIdOf(await authorizeCall(await valid(client, { state: "s".repeat(1024), nonce: "n".repeat(512) })));
  });

  it("keeps the redirect_uri's own query and adds the error to it", async () => {
    const client = await createTestClient({ redirectUris: ["https://app.example/callback?tenant=a"] });
    const res = await authorizeCall(await valid(client, { response_type: "token" }));
    const location = new URL(res.headers.get("location")!);
    expect(location.searchParams.get("tenant")).toBe("a");
    expect(location.searchParams.get("error")).toBe("unsupported_response_type");
  });
});

describe("rate limit", () => {
  it("refuses an address over its budget (60 a minute) with 429 and Retry-After", { timeout: 30_000 }, async () => {
    await inOneLimiterWindow();
    const client = await createTestClient();
    const headers = { "cf-connecting-ip": "10.99.29.1" };
    const params = await valid(client, { response_type: "token" }); // refused back to the app: nothing stored
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) statuses.push((await authorizeCall(params, { headers })).status);
    expect(statuses.slice(0, 60).every((s) => s === 302)).toBe(true);
    expect(statuses[60]).toBe(429);
    const res = await authorizeCall(params, { headers });
    expect(res.body).toMatchObject({ error: "rate_limited" });
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
  });
});
