import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { checkVars, getConfig } from "../src/config";
import { housekeeping } from "../src/cron";
import { sha256Base64Url } from "../src/encoding";
import { call, expectError, login, registerUser, sidOf } from "./helpers";
import { createTestClient, pkce, tokenRequest } from "./oauth";

/** The consent page's requests (docs/oauth-server.md): who may open and decide a request, once, and what goes back to the app. */

type Client = Awaited<ReturnType<typeof createTestClient>>;

/** An authorization request for `client` (with these parameters), as the app page receives its id. */
async function startRequest(client: Client, params: Record<string, string> = {}) {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: client.id,
    redirect_uri: client.redirectUri,
    state: "st-9",
    scope: "openid profile",
    code_challenge: (await pkce()).challenge,
    code_challenge_method: "S256",
    ...params,
  });
  const res = await call("GET", `/oauth2/authorize?${q}`);
  expect(res.status, res.text).toBe(302);
  return new URLSearchParams(new URL(res.headers.get("location")!).hash.slice(1)).get("authorize")!;
}

const open = (id: string, token?: string) => call("GET", `/oauth2/requests/${id}`, { token });
const approve = (id: string, token?: string) => call("POST", `/oauth2/requests/${id}/approve`, { token });
const deny = (id: string, token?: string) => call("POST", `/oauth2/requests/${id}/deny`, { token });
const rowOf = async (id: string) =>
  env.DB.prepare("SELECT * FROM oauth_requests WHERE id = ?")
    .bind(await sha256Base64Url(id))
    .first<Record<string, any>>();

/** The redirect_to's parameters, checked to go to the client's redirect_uri with state and iss. */
function answerOf(res: { status: number; text: string; body: any }, client: Client) {
  expect(res.status, res.text).toBe(200);
  const url = new URL(res.body.redirect_to);
  expect(`${url.origin}${url.pathname}`).toBe(client.redirectUri);
  expect(url.searchParams.get("state")).toBe("st-9");
  expect(url.searchParams.get("iss")).toBe(env.ISSUER);
  return url.searchParams;
}

/** A user signed in, and the client asking. */
async function setup(clientOptions: Parameters<typeof createTestClient>[0] = {}) {
  const user = await registerUser();
  const client = await createTestClient(clientOptions);
  return { user, client, token: user.access_token };
}

/** A new sign-in of the user (a new session, signed in now). */
async function signInAgain(username: string) {
  const res = await login(username);
  expect(res.status, res.text).toBe(200);
  return res.body.access_token as string;
}

describe("opening a request", () => {
  it("says what is asked, in words, and holds the request for this session", async () => {
    const { client, token } = await setup();
    const id = await startRequest(client, { scope: "openid profile email offline_access" });
    const res = await open(id, token);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      id,
      client: { id: client.id, name: "Test App", uri: "https://app.example/", verified: true },
      resource: null,
      redirect_origin: "https://app.example",
      prompt: null,
      login_required: false,
      consent_remembered: false,
    });
    expect(res.body.scopes.map((s: { name: string }) => s.name)).toEqual(["openid", "profile", "email", "offline_access"]);
    for (const s of res.body.scopes) expect(s.description).not.toBe(s.name);
    expect(Date.parse(res.body.expires_at)).toBeGreaterThan(Date.now());
    expect((await rowOf(id))!.session_id).toBe(sidOf(token));
  });

  it("shows a deployment's own scope by its name", async () => {
    const { client, token } = await setup({ scope: "openid billing:read" });
    const bindings = { OAUTH_SCOPES: "billing:read" };
    const q = new URLSearchParams({
      response_type: "code",
      client_id: client.id,
      scope: "billing:read",
      code_challenge: (await pkce()).challenge,
      code_challenge_method: "S256",
    });
    const started = await call("GET", `/oauth2/authorize?${q}`, { bindings });
    const id = new URLSearchParams(new URL(started.headers.get("location")!).hash.slice(1)).get("authorize")!;
    const res = await call("GET", `/oauth2/requests/${id}`, { token, bindings });
    expect(res.body.scopes).toEqual([{ name: "billing:read", description: "billing:read" }]);
  });

  it("shows a deployment's own scope in the words OAUTH_SCOPE_DESCRIPTIONS gives it, and one without words by its name", async () => {
    const { client, token } = await setup({ scope: "openid billing:read reports:read" });
    const bindings = { OAUTH_SCOPES: "billing:read reports:read", OAUTH_SCOPE_DESCRIPTIONS: JSON.stringify({ "billing:read": "See your invoices" }) };
    const q = new URLSearchParams({
      response_type: "code",
      client_id: client.id,
      scope: "openid billing:read reports:read",
      code_challenge: (await pkce()).challenge,
      code_challenge_method: "S256",
    });
    const started = await call("GET", `/oauth2/authorize?${q}`, { bindings });
    const id = new URLSearchParams(new URL(started.headers.get("location")!).hash.slice(1)).get("authorize")!;
    const res = await call("GET", `/oauth2/requests/${id}`, { token, bindings });
    expect(res.body.scopes.slice(1)).toEqual([
      { name: "billing:read", description: "See your invoices" },
      { name: "reports:read", description: "reports:read" },
    ]);
  });

  it("a description for a scope OAUTH_SCOPES does not list, or one that is not JSON, is refused by the deploy check and by the Worker", async () => {
    const problems = (vars: Record<string, string>) => checkVars({ ...env, ...vars }).filter((p) => p.startsWith("OAUTH_SCOPE_DESCRIPTIONS"));
    expect(problems({ OAUTH_SCOPES: "billing:read", OAUTH_SCOPE_DESCRIPTIONS: '{"billing:read":"See your invoices"}' })).toEqual([]);
    expect(problems({ OAUTH_SCOPES: "billing:read", OAUTH_SCOPE_DESCRIPTIONS: '{"biling:read":"See your invoices"}' })).toEqual([
      "OAUTH_SCOPE_DESCRIPTIONS: describes biling:read, not in OAUTH_SCOPES",
    ]);
    expect(problems({ OAUTH_SCOPE_DESCRIPTIONS: "{oops" }).join()).toContain("is not JSON");
    expect(problems({ OAUTH_SCOPES: "a:b", OAUTH_SCOPE_DESCRIPTIONS: JSON.stringify({ "a:b": "two\nlines" }) }).join()).toContain("on one line");
    // The Worker refuses to run with it, as with any invalid var.
    expect(() => getConfig({ ...env, OAUTH_SCOPE_DESCRIPTIONS: '{"nowhere":"x"}' })).toThrow(
      "OAUTH_SCOPE_DESCRIPTIONS: describes nowhere, not in OAUTH_SCOPES",
    );
  });

  it("says for how long: the access token's lifetime without offline_access; with it, until disconnected, at most the refresh lifetime, sooner when idle", async () => {
    const { client, token } = await setup();
    const bindings = { ACCESS_TOKEN_TTL: "600", REFRESH_TOKEN_TTL: "2592000", REFRESH_IDLE_TTL: "1209600" } as Partial<Env>;
    const lifetimeFor = async (scope: string, c = client) => {
      const q = new URLSearchParams({
        response_type: "code",
        client_id: c.id,
        redirect_uri: c.redirectUri,
        scope,
        code_challenge: (await pkce()).challenge,
        code_challenge_method: "S256",
      });
      const started = await call("GET", `/oauth2/authorize?${q}`, { bindings });
      const id = new URLSearchParams(new URL(started.headers.get("location")!).hash.slice(1)).get("authorize")!;
      const res = await call("GET", `/oauth2/requests/${id}`, { token, bindings });
      expect(res.status, res.text).toBe(200);
      return res.body.lifetime;
    };
    expect(await lifetimeFor("openid profile")).toEqual({
      access_token_seconds: 600,
      refresh: null,
      description: "For 10 minutes; after that the app must ask you again.",
    });
    expect(await lifetimeFor("openid offline_access")).toEqual({
      access_token_seconds: 600,
      refresh: { max_seconds: 2_592_000, idle_seconds: 1_209_600 },
      description: "Until you disconnect the app, for at most 30 days; it ends sooner if the app goes 14 days without using it.",
    });
    // A client that may not refresh gets no refresh token, offline_access or not.
    const noRefresh = await createTestClient({ grantTypes: ["authorization_code"] });
    expect((await lifetimeFor("openid offline_access", noRefresh)).refresh).toBeNull();
  });

  it("needs a bearer, and refuses an unknown, malformed or over-long id", async () => {
    const { client, token } = await setup();
    const id = await startRequest(client);
    expectError(await open(id), 401, "invalid_token");
    expectError(await open("A".repeat(43), token), 404, "not_found");
    expectError(await open("short", token), 404, "not_found");
    expectError(await open("x".repeat(65), token), 400, "validation_failed");
    expect((await rowOf(id))!.session_id).toBeNull();
  });

  it("is refused to another user's session: 404 for GET, approve and deny, and the request stays the holder's", async () => {
    const { client, token } = await setup();
    const other = await registerUser();
    const id = await startRequest(client);
    expect((await open(id, token)).status).toBe(200);
    expectError(await open(id, other.access_token), 404, "not_found");
    expectError(await approve(id, other.access_token), 404, "not_found");
    expectError(await deny(id, other.access_token), 404, "not_found");
    const row = await rowOf(id);
    expect(row).toMatchObject({ session_id: sidOf(token), decided_at: null, code_hash: null });
    // Another user signed in after the request was made takes nothing over either.
    const later = await registerUser();
    expectError(await approve(id, later.access_token), 404, "not_found");
    answerOf(await approve(id, token), client);
  });

  it("is refused to another session of the same user that signed in before the request", async () => {
    const { user, client, token } = await setup();
    const earlier = await signInAgain(user.input.username);
    const id = await startRequest(client);
    expect((await open(id, token)).status).toBe(200);
    expectError(await open(id, earlier), 404, "not_found");
    expectError(await approve(id, earlier), 404, "not_found");
  });

  it("is refused to an app's grant (a session with a client), and to an ended session", async () => {
    const { user, client, token } = await setup();
    const id = await startRequest(client);
    await env.DB.prepare("UPDATE sessions SET client_id = ? WHERE id = ?").bind(client.id, sidOf(token)).run();
    expectError(await open(id, token), 401, "invalid_token");
    expectError(await approve(id, token), 401, "invalid_token");
    const second = await signInAgain(user.input.username);
    expect((await call("POST", "/logout", { token: second })).status).toBe(200);
    expectError(await open(id, second), 401, "invalid_token");
    expect((await rowOf(id))!.session_id).toBeNull();
  });

  it("is refused once the client is disabled", async () => {
    const { client, token } = await setup();
    const id = await startRequest(client);
    await env.DB.prepare("UPDATE oauth_clients SET disabled_at = ? WHERE id = ?").bind(Date.now(), client.id).run();
    expectError(await open(id, token), 404, "not_found");
    expectError(await approve(id, token), 404, "not_found");
    expect((await rowOf(id))!.code_hash).toBeNull();
  });
});

describe("approving", () => {
  it("issues one code for the holder: stored as a hash with the session's auth_time and amr, and remembers the consent", async () => {
    const { user, client, token } = await setup();
    const id = await startRequest(client);
    expect((await open(id, token)).status).toBe(200);
    const params = answerOf(await approve(id, token), client);
    const code = params.get("code")!;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const session = await env.DB.prepare("SELECT auth_time, amr FROM sessions WHERE id = ?").bind(sidOf(token)).first<{ auth_time: number; amr: string }>();
    const row = (await rowOf(id))!;
    expect(row).toMatchObject({
      approved: 1,
      user_id: user.user.id,
      session_id: sidOf(token),
      code_hash: await sha256Base64Url(code),
      auth_time: session!.auth_time,
      amr: session!.amr,
      code_used_at: null,
    });
    expect(row.code_expires_at - row.decided_at).toBe(60_000);
    const consent = await env.DB.prepare("SELECT scope, resource FROM oauth_consents WHERE user_id = ? AND client_id = ?")
      .bind(user.user.id, client.id)
      .first();
    expect(consent).toEqual({ scope: "openid profile", resource: "" });
    const event = await env.DB.prepare("SELECT user_id, session_id, detail FROM audit_events WHERE event = 'oauth_request_approved' AND user_id = ?")
      .bind(user.user.id)
      .first<{ user_id: string; session_id: string; detail: string }>();
    expect(event).toMatchObject({ session_id: sidOf(token) });
    expect(JSON.parse(event!.detail)).toMatchObject({ client_id: client.id });
    expect(event!.detail).not.toContain(code);
  });

  it("works without opening first, and never twice: a replay gets 404 and the stored code stays the first", async () => {
    const { client, token } = await setup();
    const id = await startRequest(client);
    const code = answerOf(await approve(id, token), client).get("code")!;
    expectError(await approve(id, token), 404, "not_found");
    expectError(await deny(id, token), 404, "not_found");
    expectError(await deny(id), 404, "not_found");
    expectError(await open(id, token), 404, "not_found");
    expect((await rowOf(id))!).toMatchObject({ approved: 1, code_hash: await sha256Base64Url(code) });
  });

  it("gives exactly one code to two approvals at once", async () => {
    const { client, token } = await setup();
    const id = await startRequest(client);
    expect((await open(id, token)).status).toBe(200);
    const answers = await Promise.all([approve(id, token), approve(id, token), approve(id, token)]);
    const won = answers.filter((a) => a.status === 200);
    expect(won).toHaveLength(1);
    for (const lost of answers.filter((a) => a.status !== 200)) expectError(lost, 404, "not_found");
    const code = answerOf(won[0]!, client).get("code")!;
    expect((await rowOf(id))!.code_hash).toBe(await sha256Base64Url(code));
  });

  it("refuses an expired request, to open, approve or deny", async () => {
    const { client, token } = await setup();
    const id = await startRequest(client);
    expect((await open(id, token)).status).toBe(200);
    await env.DB.prepare("UPDATE oauth_requests SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1, await sha256Base64Url(id))
      .run();
    expectError(await open(id, token), 404, "not_found");
    expectError(await approve(id, token), 404, "not_found");
    expectError(await deny(id, token), 404, "not_found");
    expectError(await deny(id), 404, "not_found");
    expect((await rowOf(id))!).toMatchObject({ decided_at: null, code_hash: null });
  });

  it("remembers the union of the scopes agreed, per resource, and says so on the next request", async () => {
    const { user, client, token } = await setup();
    answerOf(await approve(await startRequest(client, { scope: "openid" }), token), client);
    answerOf(await approve(await startRequest(client, { scope: "email" }), token), client);
    const consent = await env.DB.prepare("SELECT scope FROM oauth_consents WHERE user_id = ? AND client_id = ? AND resource = ''")
      .bind(user.user.id, client.id)
      .first<{ scope: string }>();
    expect(consent!.scope.split(" ").sort()).toEqual(["email", "openid"]);
    expect((await open(await startRequest(client, { scope: "openid email" }), token)).body.consent_remembered).toBe(true);
    expect((await open(await startRequest(client, { scope: "openid profile" }), token)).body.consent_remembered).toBe(false);
    // prompt=consent: ask again, whatever was agreed.
    expect((await open(await startRequest(client, { scope: "openid", prompt: "consent" }), token)).body.consent_remembered).toBe(false);
    // Agreed for no resource is not agreed for a resource.
    const bindings = { OAUTH_RESOURCES: "https://api.example.com/" };
    const q = new URLSearchParams({
      response_type: "code",
      client_id: client.id,
      scope: "openid",
      resource: "https://api.example.com/",
      code_challenge: (await pkce()).challenge,
      code_challenge_method: "S256",
    });
    const started = await call("GET", `/oauth2/authorize?${q}`, { bindings });
    const withResource = new URLSearchParams(new URL(started.headers.get("location")!).hash.slice(1)).get("authorize")!;
    const res = await open(withResource, token);
    expect(res.body).toMatchObject({ resource: "https://api.example.com/", consent_remembered: false });
  });
  it("keeps every scope when approvals of several requests land at once", async () => {
    const { user, client, token } = await setup();
    const scopes = ["openid", "profile", "email", "offline_access"];
    const ids = await Promise.all(scopes.map((scope) => startRequest(client, { scope })));
    const answers = await Promise.all(ids.map((id) => approve(id, token)));
    for (const a of answers) answerOf(a, client);
    const consent = await env.DB.prepare("SELECT scope FROM oauth_consents WHERE user_id = ? AND client_id = ?")
      .bind(user.user.id, client.id)
      .first<{ scope: string }>();
    expect(consent!.scope.split(" ").sort()).toEqual([...scopes].sort());
  });
});

describe("a newer sign-in asked for (prompt=login, max_age)", () => {
  it("prompt=login: 401 reauthentication_required, then a fresh sign-in of the same user takes over and approves", async () => {
    const { user, client, token } = await setup();
    const id = await startRequest(client, { prompt: "login" });
    expect((await open(id, token)).body.login_required).toBe(true);
    expectError(await approve(id, token), 401, "reauthentication_required");
    expect((await rowOf(id))!.decided_at).toBeNull();
    const fresh = await signInAgain(user.input.username);
    const opened = await open(id, fresh);
    expect(opened.status, opened.text).toBe(200);
    expect(opened.body.login_required).toBe(false);
    expect((await rowOf(id))!.session_id).toBe(sidOf(fresh));
    // The old session lost it.
    expectError(await approve(id, token), 404, "not_found");
    const code = answerOf(await approve(id, fresh), client).get("code")!;
    const authTime = await env.DB.prepare("SELECT auth_time FROM sessions WHERE id = ?").bind(sidOf(fresh)).first<{ auth_time: number }>();
    expect((await rowOf(id))!).toMatchObject({ session_id: sidOf(fresh), auth_time: authTime!.auth_time, code_hash: await sha256Base64Url(code) });
  });

  it("max_age: a sign-in older than it (as D1 records it, not the token) needs a new one; a recent one does not", async () => {
    const { user, client, token } = await setup();
    await env.DB.prepare("UPDATE sessions SET auth_time = auth_time - 120000 WHERE id = ?").bind(sidOf(token)).run();
    const id = await startRequest(client, { max_age: "60" });
    expect((await open(id, token)).body.login_required).toBe(true);
    expectError(await approve(id, token), 401, "reauthentication_required");
    const fresh = await signInAgain(user.input.username);
    answerOf(await approve(id, fresh), client);
    // A recent enough sign-in approves at once.
    answerOf(await approve(await startRequest(client, { max_age: "3600" }), fresh), client);
  });
});

describe("prompt=none", () => {
  it("without a remembered consent: approve sends consent_required back, and no code exists", async () => {
    const { user, client, token } = await setup();
    const id = await startRequest(client, { prompt: "none" });
    const params = answerOf(await approve(id, token), client);
    expect(params.get("error")).toBe("consent_required");
    expect(params.get("code")).toBeNull();
    expect((await rowOf(id))!).toMatchObject({ approved: 0, code_hash: null });
    expectError(await approve(id, token), 404, "not_found");
    const event = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'oauth_request_denied' AND user_id = ?")
      .bind(user.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(event!.detail)).toMatchObject({ client_id: client.id, reason: "consent_required" });
  });

  it("with a remembered consent covering it: a code at once", async () => {
    const { client, token } = await setup();
    answerOf(await approve(await startRequest(client, { scope: "openid profile" }), token), client);
    const params = answerOf(await approve(await startRequest(client, { scope: "openid", prompt: "none" }), token), client);
    expect(params.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.get("error")).toBeNull();
  });

  it("a public client on a loopback redirect is asked every time (RFC 8252 8.6); a confidential one there is not", async () => {
    const loopback = ["http://127.0.0.1/callback"];
    for (const [confidential, remembered] of [
      [false, false],
      [true, true],
    ] as const) {
      const { client, token } = await setup({ redirectUris: loopback, confidential });
      answerOf(await approve(await startRequest(client, { scope: "openid" }), token), client);
      expect((await open(await startRequest(client, { scope: "openid" }), token)).body.consent_remembered).toBe(remembered);
      const params = answerOf(await approve(await startRequest(client, { scope: "openid", prompt: "none" }), token), client);
      expect(params.get("error")).toBe(remembered ? null : "consent_required");
    }
  });

  it("with a sign-in older than max_age: login_required back to the app, not a 401", async () => {
    const { client, token } = await setup();
    answerOf(await approve(await startRequest(client), token), client);
    await env.DB.prepare("UPDATE sessions SET auth_time = auth_time - 120000 WHERE id = ?").bind(sidOf(token)).run();
    const params = answerOf(await approve(await startRequest(client, { prompt: "none", max_age: "60" }), token), client);
    expect(params.get("error")).toBe("login_required");
  });

  it("nobody signed in: deny without a bearer sends login_required back", async () => {
    const { client } = await setup();
    const id = await startRequest(client, { prompt: "none" });
    const params = answerOf(await deny(id), client);
    expect(params.get("error")).toBe("login_required");
    expect((await rowOf(id))!).toMatchObject({ approved: 0, code_hash: null, session_id: null });
  });
});

describe("denying", () => {
  it("with the holder's bearer: access_denied, once, and no approval after it", async () => {
    const { user, client, token } = await setup();
    const id = await startRequest(client);
    expect((await open(id, token)).status).toBe(200);
    const params = answerOf(await deny(id, token), client);
    expect(params.get("error")).toBe("access_denied");
    expect(params.get("code")).toBeNull();
    expectError(await approve(id, token), 404, "not_found");
    expectError(await deny(id, token), 404, "not_found");
    expect((await rowOf(id))!).toMatchObject({ approved: 0, code_hash: null, user_id: user.user.id });
  });

  it("without a bearer: access_denied for an ordinary request; with a bad bearer: 401", async () => {
    const { client } = await setup();
    const id = await startRequest(client);
    expectError(await deny(id, "not.a.token"), 401, "invalid_token");
    expect((await rowOf(id))!.decided_at).toBeNull();
    expect(answerOf(await deny(id), client).get("error")).toBe("access_denied");
  });
});

describe("the whole way, through the real endpoints", () => {
  it("authorize, open, approve, then the app's exchange: tokens once, with the nonce; the same code again is refused", async () => {
    const { user, client, token } = await setup();
    const { verifier, challenge } = await pkce();
    const id = await startRequest(client, { code_challenge: challenge, nonce: "nonce-29" });
    expect((await open(id, token)).status).toBe(200);
    const code = answerOf(await approve(id, token), client).get("code")!;
    const form = { grant_type: "authorization_code", code, code_verifier: verifier, client_id: client.id, redirect_uri: client.redirectUri };
    const exchanged = await tokenRequest(form);
    expect(exchanged.status, exchanged.text).toBe(200);
    expect(exchanged.body).toMatchObject({ token_type: "Bearer", scope: "openid profile" });
    const idToken = JSON.parse(atob(exchanged.body.id_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    expect(idToken).toMatchObject({ sub: user.user.id, aud: client.id, nonce: "nonce-29" });
    const again = await tokenRequest(form);
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: "invalid_grant" });
    // The app's access token opens nothing here: only the API's own sign-in decides for the user.
    const next = await startRequest(client);
    expectError(await open(next, exchanged.body.access_token), 401, "invalid_token");
    expectError(await approve(next, exchanged.body.access_token), 401, "invalid_token");
    expectError(await deny(next, exchanged.body.access_token), 401, "invalid_token");
    expect((await rowOf(next))!.decided_at).toBeNull();
  });
});

describe("housekeeping", () => {
  it("deletes requests ended over a day ago, decided or not, and keeps the others", async () => {
    const { client, token } = await setup();
    const [old, decided, fresh] = [await startRequest(client), await startRequest(client), await startRequest(client)];
    answerOf(await approve(decided, token), client);
    const dayAndMore = Date.now() - 25 * 60 * 60 * 1000;
    for (const id of [old, decided])
      await env.DB.prepare("UPDATE oauth_requests SET expires_at = ? WHERE id = ?")
        .bind(dayAndMore, await sha256Base64Url(id))
        .run();
    const removed = await housekeeping(env);
    expect(removed.oauthRequests).toBeGreaterThanOrEqual(2);
    expect(await rowOf(old)).toBeNull();
    expect(await rowOf(decided)).toBeNull();
    expect(await rowOf(fresh)).not.toBeNull();
  });
});
