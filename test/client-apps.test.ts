import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuthError, authorizeRequestId, createAuthClient } from "../client";
import { call, expectDocumented, PASSWORD, randomIp, uniqueName } from "./helpers";
import { createTestClient, pkce, tokenRequest } from "./oauth";

/**
 * The typed client's consent and connected-apps calls (client/apps.ts) against the real worker: a
 * request made by the real GET /oauth2/authorize, read, approved or denied through the client, the
 * code exchanged at the token endpoint, the app listed and disconnected.
 */

/** The worker's fetch as the client's, one address per client, every answer checked against /openapi.json. */
function viaWorker() {
  const ip = randomIp();
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    req.headers.set("cf-connecting-ip", ip);
    const res = await exports.default.fetch(req);
    const text = await res.clone().text();
    await expectDocumented(req.method, new URL(req.url).pathname, res, text ? JSON.parse(text) : undefined);
    return res;
  }) as typeof fetch;
}

const newClient = () => createAuthClient({ baseUrl: "http://localhost", fetch: viaWorker(), cookie: false });
async function signedUpClient() {
  const client = newClient();
  const input = { username: uniqueName("apps"), password: PASSWORD };
  const user = await client.register(input);
  return { client, user, input };
}

type App = Awaited<ReturnType<typeof createTestClient>>;

/** GET /oauth2/authorize as the app sends the browser there; answers the page URL it redirects to and the PKCE verifier. */
async function authorize(app: App, params: Record<string, string> = {}) {
  const { verifier, challenge } = await pkce();
  const q = new URLSearchParams({
    response_type: "code",
    client_id: app.id,
    redirect_uri: app.redirectUri,
    state: "s-42",
    scope: "openid profile offline_access",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...params,
  });
  const res = await call("GET", `/oauth2/authorize?${q}`);
  expect(res.status, res.text).toBe(302);
  return { page: res.headers.get("location")!, verifier };
}

/** The app's redirect_uri with its parameters, checked for state and iss (RFC 9207). */
function landing(redirectTo: string, app: App) {
  const url = new URL(redirectTo);
  expect(`${url.origin}${url.pathname}`).toBe(app.redirectUri);
  expect(url.searchParams.get("state")).toBe("s-42");
  expect(url.searchParams.get("iss")).toBe(env.ISSUER);
  return url.searchParams;
}

describe("the typed client's consent calls", () => {
  it("reads a request, approves it, and the app's code exchanges; the app is listed, then disconnected", async () => {
    const app = await createTestClient({ name: "Notes App" });
    const { client } = await signedUpClient();
    const { page, verifier } = await authorize(app);
    expect(page.startsWith(env.APP_URL)).toBe(true);
    const id = authorizeRequestId(page)!;
    expect(id).toMatch(/^[\w-]{20,}$/);

    const asked = await client.authorizationRequest(id);
    expect(asked.client).toEqual({ id: app.id, name: "Notes App", uri: "https://app.example/", verified: true });
    expect(asked.scopes.map((s) => s.name)).toEqual(["openid", "profile", "offline_access"]);
    for (const s of asked.scopes) expect(s.description.length).toBeGreaterThan(5); // plain words for the page
    expect(asked).toMatchObject({ resource: null, redirect_origin: "https://app.example", login_required: false, consent_remembered: false });

    const { redirect_to } = await client.approve(id);
    const code = landing(redirect_to, app).get("code")!;
    // Single use: a second approval finds nothing to approve.
    await expect(client.approve(id)).rejects.toMatchObject({ code: "not_found", status: 404 });

    const tokens = await tokenRequest({ grant_type: "authorization_code", code, redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.id });
    expect(tokens.status, tokens.text).toBe(200);
    expect(tokens.body.refresh_token).toBeTruthy();

    const apps = await client.connectedApps();
    expect(apps).toHaveLength(1);
    expect(apps[0]).toMatchObject({ client_id: app.id, name: "Notes App", uri: "https://app.example/", grants: 1, consent_remembered: true });
    expect(apps[0]!.scopes).toEqual(expect.arrayContaining(["openid", "profile", "offline_access"]));
    expect(Date.parse(apps[0]!.connected_at)).toBeGreaterThan(Date.now() - 60_000);

    const done = await client.disconnectApp(app.id);
    expect(done).toMatchObject({ grants_revoked: 1, consents_removed: 1 });
    expect(await client.connectedApps()).toEqual([]);
    // The grant is over: its refresh token is refused.
    const refreshed = await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.body.refresh_token, client_id: app.id });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe("invalid_grant");
    // An app this account never let in: not_found, as an AuthError.
    const stranger = await createTestClient();
    const none = await client.disconnectApp(stranger.id).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(AuthError);
    expect(none).toMatchObject({ code: "not_found", status: 404 });
  });

  it("denies: access_denied signed in; signed out, login_required for prompt=none (no session sent)", async () => {
    const app = await createTestClient();
    const { client } = await signedUpClient();
    const signedIn = authorizeRequestId((await authorize(app)).page)!;
    await client.authorizationRequest(signedIn);
    const no = landing((await client.deny(signedIn)).redirect_to, app);
    expect(no.get("error")).toBe("access_denied");
    expect(no.get("code")).toBeNull();

    const nobody = newClient();
    const silent = authorizeRequestId((await authorize(app, { prompt: "none" })).page)!;
    expect(landing((await nobody.deny(silent)).redirect_to, app).get("error")).toBe("login_required");
    // Signed out, the client cannot read a request: the API wants a session.
    const other = authorizeRequestId((await authorize(app)).page)!;
    await expect(nobody.authorizationRequest(other)).rejects.toMatchObject({ code: "invalid_token", status: 401 });
  });

  it("a request held by one session is not found by another user's", async () => {
    const app = await createTestClient();
    const first = await signedUpClient();
    const second = await signedUpClient();
    const id = authorizeRequestId((await authorize(app)).page)!;
    await first.client.authorizationRequest(id);
    await expect(second.client.authorizationRequest(id)).rejects.toMatchObject({ code: "not_found", status: 404 });
    await expect(second.client.approve(id)).rejects.toMatchObject({ code: "not_found", status: 404 });
    // The holder still decides it.
    expect(landing((await first.client.approve(id)).redirect_to, app).get("code")).toBeTruthy();
  });

  it("prompt=login: 401 reauthentication_required, then a new sign-in takes the request over and approves", async () => {
    const app = await createTestClient();
    const { client, input } = await signedUpClient();
    // Signed in before the request: too old for prompt=login.
    await new Promise((r) => setTimeout(r, 1100));
    const id = authorizeRequestId((await authorize(app, { prompt: "login" })).page)!;
    expect((await client.authorizationRequest(id)).login_required).toBe(true);
    await expect(client.approve(id)).rejects.toMatchObject({ code: "reauthentication_required", status: 401 });
    // Still signed in: the refusal is about this request, not the session.
    expect(client.state.signedIn).toBe(true);
    await client.login(input);
    expect((await client.authorizationRequest(id)).login_required).toBe(false);
    expect(landing((await client.approve(id)).redirect_to, app).get("code")).toBeTruthy();
  });
});

describe("authorizeRequestId", () => {
  it("reads the request id from a page URL's fragment, and nothing else", () => {
    expect(authorizeRequestId("https://app.example/#authorize=abc-_1")).toBe("abc-_1");
    expect(authorizeRequestId("https://app.example/#x=1&authorize=abc")).toBe("abc");
    expect(authorizeRequestId("https://app.example/?authorize=abc")).toBeNull();
    expect(authorizeRequestId("https://app.example/#reset-password=abc")).toBeNull();
  });
});
