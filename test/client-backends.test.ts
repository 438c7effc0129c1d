import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuthError, createAuthClient } from "../client";
import teamBackend from "../docs/examples/team-backend";
import { decodeJwtPart, forgeToken, nowSeconds, PASSWORD, randomIp, uniqueName } from "./helpers";

/**
 * The typed client calling a team's own backend: client.fetch() and client.accessToken(), against the
 * real worker and the backend of docs/examples/team-backend.ts (run as it is documented), which checks
 * every token through the API's JWKS. The network is one router: the API at its ISSUER, the backend at
 * https://team.example, anything else recorded as a leak and refused.
 */

const TEAM = "https://team.example";
const newUser = () => ({ username: uniqueName("team"), password: PASSWORD });

interface Seen {
  calls: string[]; // "GET https://team.example/api/me" etc.
  leaked: string[]; // requests to an origin nobody should call
  authorizations: string[]; // what the backend received
}

// The worker's own outbound calls (a new password's range query to the stand-in) still go out.
const realFetch = globalThis.fetch;

/** The network: the API (its own fetch, one client address), the backend, the stand-ins the API calls, and nothing else. */
function network(
  seen: Seen,
  backend: (req: Request) => Response | Promise<Response> = (req) => teamBackend.fetch(req, { ISSUER: env.ISSUER, AUDIENCE: env.AUDIENCE }),
) {
  const ip = randomIp();
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    if (url.origin === env.TEST_STAND_INS) return realFetch(req);
    seen.calls.push(`${req.method} ${url.origin}${url.pathname}`);
    if (url.origin === env.ISSUER) {
      req.headers.set("cf-connecting-ip", ip);
      return exports.default.fetch(req);
    }
    if (url.origin === TEAM) {
      seen.authorizations.push(req.headers.get("authorization") ?? "");
      return backend(req);
    }
    seen.leaked.push(req.url);
    return new Response("unreachable", { status: 599 });
  };
}

let seen: Seen;
let route: ReturnType<typeof network>;
beforeEach(() => {
  seen = { calls: [], leaked: [], authorizations: [] };
  route = network(seen);
  // jose's remote key set fetches the JWKS with the global fetch, as it would in a deployed Worker.
  vi.stubGlobal("fetch", (input: RequestInfo | URL, init?: RequestInit) => route(input, init));
});
afterEach(() => vi.unstubAllGlobals());

const clientFor = (opts: { refreshLeeway?: number } = {}) =>
  createAuthClient({ baseUrl: env.ISSUER, cookie: false, backends: [TEAM], fetch: (i, o) => route(i, o), ...opts });

/** A client whose sign-in hands it an access token that has already expired (the server's key signed it). */
async function clientWithExpiredToken() {
  const input = newUser();
  await clientFor().register(input);
  const stale = network(seen, (req) => teamBackend.fetch(req, { ISSUER: env.ISSUER, AUDIENCE: env.AUDIENCE }));
  const client = createAuthClient({
    baseUrl: env.ISSUER,
    cookie: false,
    backends: [TEAM],
    fetch: async (i, o) => {
      const res = await stale(i, o);
      if (!String(i).endsWith("/login")) return res;
      const body = await res.json<{ access_token: string }>();
      const expired = await forgeToken({ claims: { ...decodeJwtPart(body.access_token, 1), iat: nowSeconds() - 1000, exp: nowSeconds() - 10 } });
      return Response.json({ ...body, access_token: expired });
    },
  });
  await client.login(input);
  return { client, input };
}

describe("client.fetch() to the team's backend", () => {
  it("sends the access token as a Bearer; the backend verifies it through the API's JWKS", async () => {
    const client = clientFor();
    const user = await client.register(newUser());
    const res = await client.fetch(`${TEAM}/api/me`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ user_id: user.id, username: user.username, roles: ["user"] });
    expect(seen.authorizations).toEqual([`Bearer ${await client.accessToken()}`]);
    // The backend found the keys where the documentation says: the issuer's JWKS, fetched by jose.
    expect(seen.calls).toContain(`GET ${env.ISSUER}/.well-known/jwks.json`);
    // A POST with its body and headers, as fetch() takes them.
    const posted = await client.fetch(`${TEAM}/api/notes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "hi" }),
    });
    expect(posted.status).toBe(201);
    expect(await posted.json()).toEqual({ saved: "hi", by: user.id });
    expect(seen.leaked).toEqual([]);
  });

  it("refuses an origin it was not given, before anything is sent: the token never leaves for it", async () => {
    const client = clientFor();
    await client.register(newUser());
    seen.calls.length = 0;
    for (const url of [
      "https://evil.example/api/me",
      "http://team.example/api/me", // another scheme is another origin
      "https://team.example.evil.example/api/me",
      "https://team.example:8443/api/me",
      "https://evil.example/?next=https://team.example/",
    ]) {
      const err = await client.fetch(url).catch((e: unknown) => e);
      expect(err, url).toBeInstanceOf(AuthError);
      expect(err, url).toMatchObject({ code: "origin_not_allowed", status: 0 });
    }
    await expect(client.fetch(new Request("https://evil.example/x", { method: "POST", body: "x" }))).rejects.toMatchObject({ code: "origin_not_allowed" });
    // A relative URL is the page's own origin (none here): not listed, so refused too.
    await expect(client.fetch("/api/me")).rejects.toThrow();
    expect(seen.calls).toEqual([]);
    // The backends list is origins: a path or a default port in it changes nothing.
    const lenient = createAuthClient({ baseUrl: env.ISSUER, cookie: false, backends: ["https://TEAM.example:443/api/"], fetch: (i, o) => route(i, o) });
    await lenient.register(newUser());
    expect((await lenient.fetch(`${TEAM}/api/me`)).status).toBe(200);
    // The API's own origin is always allowed (the same token, for routes the client has no method for).
    expect((await lenient.fetch(`${env.ISSUER}/protected`)).status).toBe(200);
    expect(seen.leaked).toEqual([]);
  });

  it("meets a refused token with one refresh for ten parallel calls, then each retries once", async () => {
    const { client, input } = await clientWithExpiredToken();
    seen.calls.length = 0;
    const results = await Promise.all(Array.from({ length: 10 }, () => client.fetch(`${TEAM}/api/me`).then((r) => r.json<{ username: string }>())));
    expect(results.every((r) => r.username === input.username)).toBe(true);
    expect(seen.calls.filter((c) => c === `POST ${env.ISSUER}/refresh`)).toHaveLength(1);
    expect(seen.calls.filter((c) => c === `GET ${TEAM}/api/me`)).toHaveLength(20);
  });

  it("replays a Request's body on the retry", async () => {
    const { client } = await clientWithExpiredToken();
    const req = new Request(`${TEAM}/api/notes`, { method: "POST", headers: { "content-type": "application/json", "x-trace": "1" }, body: '{"text":"again"}' });
    const res = await client.fetch(req);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ saved: "again" });
    expect(seen.calls.filter((c) => c === `POST ${TEAM}/api/notes`)).toHaveLength(2);
  });

  it("fetch(request, init): the init's method and body win over the request's, as fetch itself does", async () => {
    const { client } = await clientWithExpiredToken();
    const res = await client.fetch(new Request(`${TEAM}/api/notes`), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"text":"from init"}',
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ saved: "from init" });
    expect(seen.calls.filter((c) => c === `POST ${TEAM}/api/notes`)).toHaveLength(2);
  });

  it("retries once, not again: a backend that keeps refusing gets its 401 back, after one refresh", async () => {
    const client = clientFor();
    await client.register(newUser());
    route = network(seen, async () =>
      Response.json({ error: "invalid_token" }, { status: 401, headers: { "WWW-Authenticate": 'Bearer error="invalid_token"' } }),
    );
    seen.calls.length = 0;
    const res = await client.fetch(`${TEAM}/api/me`);
    expect(res.status).toBe(401);
    expect(seen.calls.filter((c) => c.startsWith(`GET ${TEAM}`))).toHaveLength(2);
    expect(seen.calls.filter((c) => c === `POST ${env.ISSUER}/refresh`)).toHaveLength(1);
    expect(client.state.signedIn).toBe(true);
  });

  it("hands back every other answer untouched: no refresh for a 401 without invalid_token, a 403, a 500", async () => {
    const client = clientFor();
    await client.register(newUser());
    for (const [status, challenge] of [
      [401, "Bearer"], // no token, or no error: not the token's fault
      [401, 'Bearer error="insufficient_scope"'],
      [401, 'Basic realm="x", error="invalid_token"'], // not a Bearer challenge
      [403, 'Bearer error="invalid_token"'],
      [500, null],
    ] as const) {
      route = network(seen, async () => new Response("no", { status, headers: challenge ? { "WWW-Authenticate": challenge } : {} }));
      seen.calls.length = 0;
      const res = await client.fetch(`${TEAM}/api/me`);
      expect(res.status, `${status} ${challenge}`).toBe(status);
      expect(seen.calls, `${status} ${challenge}`).toEqual([`GET ${TEAM}/api/me`]);
    }
  });

  it("refreshes a token about to expire before the call, once for many calls", async () => {
    const client = clientFor({ refreshLeeway: 10_000 }); // every token counts as about to expire
    await client.register(newUser());
    seen.calls.length = 0;
    await Promise.all(Array.from({ length: 5 }, () => client.fetch(`${TEAM}/api/me`)));
    expect(seen.calls.filter((c) => c === `POST ${env.ISSUER}/refresh`)).toHaveLength(1);
    expect(seen.calls.filter((c) => c === `GET ${TEAM}/api/me`)).toHaveLength(5);
  });

  it("says signed out (AuthError invalid_token) without sending anything when nobody is signed in", async () => {
    const client = clientFor();
    await expect(client.fetch(`${TEAM}/api/me`)).rejects.toMatchObject({ code: "invalid_token", status: 401 });
    await client.register(newUser());
    await client.logout();
    seen.calls.length = 0;
    await expect(client.fetch(`${TEAM}/api/me`)).rejects.toMatchObject({ code: "invalid_token" });
    expect(seen.calls).toEqual([]);
  });

  it("the backend refuses what is not this API's access token for it: another key, issuer, audience, type, or none", async () => {
    const attempts: [string, string | undefined][] = [
      [
        "another key",
        await forgeToken({ key: ((await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])) as CryptoKeyPair).privateKey }),
      ],
      ["another issuer", await forgeToken({ claims: { iss: "https://evil.example" } })],
      ["another audience", await forgeToken({ claims: { aud: "another-service" } })],
      ["not an access token", await forgeToken({ header: { typ: "JWT" } })],
      ["expired", await forgeToken({ claims: { iat: nowSeconds() - 1000, exp: nowSeconds() - 10 } })],
      ["none", undefined],
    ];
    for (const [what, token] of attempts) {
      const res = await teamBackend.fetch(new Request(`${TEAM}/api/me`, { headers: token ? { authorization: `Bearer ${token}` } : {} }), {
        ISSUER: env.ISSUER,
        AUDIENCE: env.AUDIENCE,
      });
      expect(res.status, what).toBe(401);
      expect(res.headers.get("www-authenticate"), what).toBe(token ? 'Bearer error="invalid_token"' : "Bearer");
    }
    // The same claims, signed by the API's own key, pass.
    const res = await teamBackend.fetch(new Request(`${TEAM}/api/me`, { headers: { authorization: `Bearer ${await forgeToken()}` } }), {
      ISSUER: env.ISSUER,
      AUDIENCE: env.AUDIENCE,
    });
    expect(res.status).toBe(200);
  });
});

describe("client.accessToken()", () => {
  it("gives the current token, refreshed first when about to expire, and null when signed out, asking the API nothing", async () => {
    const client = clientFor();
    expect(await client.accessToken()).toBeNull();
    expect(seen.calls).toEqual([]);
    await client.register(newUser());
    const token = await client.accessToken();
    expect(decodeJwtPart(token!, 1).sub).toBe(client.state.signedIn && client.state.userId);
    expect(await client.accessToken()).toBe(token); // no refresh while it is fresh
    const soon = clientFor({ refreshLeeway: 10_000 });
    await soon.register(newUser());
    seen.calls.length = 0;
    const [a, b] = await Promise.all([soon.accessToken(), soon.accessToken()]);
    expect(a).toBe(b);
    expect(seen.calls).toEqual([`POST ${env.ISSUER}/refresh`]);
    await client.logout();
    seen.calls.length = 0;
    expect(await client.accessToken()).toBeNull();
    expect(seen.calls).toEqual([]);
  });

  it("throws what is not a sign-out: a network failure stays an AuthError network_error", async () => {
    const client = createAuthClient({ baseUrl: env.ISSUER, cookie: false, refreshLeeway: 10_000, fetch: (i, o) => route(i, o) });
    await client.register(newUser());
    route = async () => {
      throw new TypeError("Failed to fetch");
    };
    await expect(client.accessToken()).rejects.toMatchObject({ code: "network_error" });
  });
});
