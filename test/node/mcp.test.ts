import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module shared with `npm run demo` and the e2e setup
import { start, stop, waitFor } from "../../scripts/servers.mjs";
import { jsonApi, localD1, prepareLocalApi, wranglerEnv } from "./local-api";

/**
 * An MCP server protected by this API, reached by the official MCP TypeScript SDK's client that starts
 * from nothing but the server's URL (examples/mcp-server, docs/oauth-server.md). Two real `wrangler dev`:
 * the API (its own database) and the example MCP server, trusting the API as its issuer. The SDK meets
 * the 401, reads the protected resource metadata (RFC 9728), then the API's metadata (RFC 8414),
 * registers itself (RFC 7591) unless it was registered ahead of time, sends
 * the person to the authorization endpoint with PKCE and the resource (RFC 8707), exchanges the code,
 * calls the tool, and refreshes when the access token runs out. The person's part is done as an app's
 * consent page does it: signed in to the API, it reads the request and approves it.
 */
const API_PORT = 8791; // none shared: issuer 8794, oauth-server 8795, demo-ports 8797/8798, e2e 8790, docs:check 8792
const MCP_PORT = 8793;
// Each wrangler dev its own devtools port (API_PORT + 1000, MCP_PORT + 1000): two started at once
// would both take the default 9229.
const ISSUER = `http://localhost:${API_PORT}`;
const MCP_URL = `http://localhost:${MCP_PORT}/mcp`;
const PRM_URL = `http://localhost:${MCP_PORT}/.well-known/oauth-protected-resource/mcp`;
const OTHER_RESOURCE = "https://other.example/api"; // allowed by the deployment: a token for it is not for the MCP server
const APP_URL = "http://localhost:5199/"; // the consent page: never served, only read from Location
const REDIRECT_URI = "http://127.0.0.1:33418/callback"; // the MCP client's: never served, the code is read from redirect_to
const SCOPE = "mcp:tools";
const TTL = 60; // the API's ACCESS_TOKEN_TTL (its least): the refresh below waits for a token to run out
const PASSWORD = "correct horse 42";

const _env = wranglerEnv;
const state = mkdtempSync(path.join(tmpdir(), "mcp-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const vars = (pairs: Record<string, string>) => Object.entries(pairs).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
const d1 = localD1(state);

const api = jsonApi(ISSUER);

/** A person who signed up in the first-party app: the first-party access token the consent page uses, and the user id. */
async function person(prefix: string) {
  const reg = await api("POST", "/register", { username: `${prefix}_${randomBytes(4).toString("hex")}`, password: PASSWORD });
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  return { id: reg.body.user.id as string, token: reg.body.access_token as string };
}

/** An app an operator registered ahead of time (public: PKCE alone binds its codes). */
function preRegister(scope: string): string {
  const id = `mcp-client-${randomBytes(6).toString("hex")}`;
  const json = (v: unknown) => `'${JSON.stringify(v)}'`;
  d1(
    `INSERT INTO oauth_clients (id, name, redirect_uris, secret_hash, grant_types, scope, resources, source, created_at) VALUES ('${id}', 'MCP test client', ${json([REDIRECT_URI])}, NULL, ${json(["authorization_code", "refresh_token"])}, '${scope}', '[]', 'admin', ${Date.now()})`,
  );
  return id;
}

/**
 * The browser's trip to the authorization endpoint and the app's consent page: the endpoint sends the
 * browser to APP_URL#authorize=<id>; the app, signed in as `who`, reads what is asked and approves.
 * Answers the code from redirect_to, after checking state and iss (RFC 9207).
 */
async function consent(authorizationUrl: URL, who: { token: string }, expected: { resource: string; scopes: string[] }) {
  const res = await fetch(authorizationUrl, { redirect: "manual" });
  expect(res.status, await res.clone().text()).toBe(302);
  const location = new URL(res.headers.get("location")!);
  expect(`${location.origin}${location.pathname}`).toBe(APP_URL);
  const id = new URLSearchParams(location.hash.slice(1)).get("authorize");
  expect(id).toBeTruthy();
  const asked = await api("GET", `/oauth2/requests/${id}`, undefined, who.token);
  expect(asked.status, JSON.stringify(asked.body)).toBe(200);
  expect(asked.body.resource).toBe(expected.resource);
  expect(asked.body.scopes.map((s: { name: string }) => s.name)).toEqual(expected.scopes);
  const approved = await api("POST", `/oauth2/requests/${id}/approve`, undefined, who.token);
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  const back = new URL(approved.body.redirect_to);
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
  expect(back.searchParams.get("iss")).toBe(ISSUER);
  expect(back.searchParams.get("state")).toBe(authorizationUrl.searchParams.get("state"));
  const code = back.searchParams.get("code");
  expect(code).toBeTruthy();
  return code!;
}

/**
 * The MCP client's OAuth side, as the SDK asks for it (OAuthClientProvider): it keeps what the SDK
 * hands it, and its "browser" is `consent` above. Given a client_id (pre-registered), clientInformation
 * returns it; given none, the SDK registers the client with clientMetadata and saveClientInformation
 * keeps the answer.
 */
class TestProvider implements OAuthClientProvider {
  code: string | undefined;
  saved: OAuthTokens[] = [];
  private verifier = "";
  constructor(
    private who: { token: string },
    private client: OAuthClientInformationMixed | undefined,
    private authMethod: "none" | "client_secret_basic" = "none",
  ) {}
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "MCP test client",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: this.authMethod,
    };
  }
  state() {
    return randomBytes(16).toString("base64url");
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.saved.at(-1);
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved.push(tokens);
  }
  async redirectToAuthorization(url: URL) {
    // What the SDK asks the authorization server for: PKCE S256, this server as the resource, its scope.
    expect(url.origin).toBe(ISSUER);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("code_challenge")).toBe(createHash("sha256").update(this.verifier).digest("base64url"));
    expect(url.searchParams.get("resource")).toBe(MCP_URL);
    expect(url.searchParams.get("scope")).toBe(SCOPE);
    this.code = await consent(url, this.who, { resource: MCP_URL, scopes: [SCOPE] });
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/** Every request the SDK makes (the MCP server, the metadata, the token endpoint), in order; and how it authenticated at the token endpoint. */
function recordingFetch(log: string[], clientAuth: string[] = []): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    log.push(`${init?.method ?? (input instanceof Request ? input.method : "GET")} ${url.origin}${url.pathname} ${res.status}`);
    if (url.pathname === "/oauth2/token") {
      const basic = new Headers(init?.headers).get("authorization")?.startsWith("Basic ");
      const form = new URLSearchParams(String(init?.body));
      clientAuth.push(basic ? "client_secret_basic" : form.has("client_secret") ? "client_secret_post" : "none");
    }
    return res;
  };
}

const whoami = async (client: Client) => {
  const result = await client.callTool({ name: "whoami", arguments: {} });
  expect(result.isError).toBeFalsy();
  return result.structuredContent as { user_id: string; client_id: string; scopes: string[] };
};

/** A token obtained by hand (authorization code + PKCE at the API), for what the SDK would never ask: another resource, no scope. */
async function tokenFor(clientId: string, who: { token: string }, ask: { resource: string; scope: string }) {
  const verifier = randomBytes(32).toString("base64url");
  const url = new URL(`${ISSUER}/oauth2/authorize`);
  for (const [k, v] of Object.entries({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    state: randomBytes(8).toString("hex"),
    scope: ask.scope,
    resource: ask.resource,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  }))
    url.searchParams.set(k, v);
  const code = await consent(url, who, { resource: ask.resource, scopes: ask.scope.split(" ") });
  const res = await fetch(`${ISSUER}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId }),
  });
  const body = (await res.json()) as any;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.access_token as string;
}

/** A raw MCP request to the server with `token`: what a client without the SDK would send first. */
const initialize = (token?: string) =>
  fetch(MCP_URL, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
    }),
  });

/**
 * A client ID metadata document (the MCP spec's preferred registration), served on loopback: the API
 * fetches a loopback document only while its own ISSUER is loopback (local development), as here.
 */
let documents: Server;
let documentUrl = "";
async function serveDocument() {
  documents = createServer((req, res) => {
    if (req.url !== "/mcp-client.json") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" });
    res.end(
      JSON.stringify({
        client_id: documentUrl,
        client_name: "MCP test client (document)",
        redirect_uris: [REDIRECT_URI],
        grant_types: ["authorization_code", "refresh_token"],
        token_endpoint_auth_method: "none",
      }),
    );
  });
  await new Promise<void>((resolve) => documents.listen(0, "127.0.0.1", resolve));
  documentUrl = `http://localhost:${(documents.address() as AddressInfo).port}/mcp-client.json`;
}

beforeAll(async () => {
  await serveDocument();
  // Secrets from .dev.vars (dev-setup writes them if missing); the rest on the command line.
  prepareLocalApi(state);
  start(
    "wrangler",
    [
      "dev",
      "--port",
      String(API_PORT),
      "--persist-to",
      state,
      "--inspector-port",
      String(API_PORT + 1000),
      ...vars({
        ISSUER,
        APP_URL,
        CORS_ORIGINS: "http://localhost:5199",
        OAUTH_SCOPES: SCOPE,
        OAUTH_RESOURCES: `${MCP_URL},${OTHER_RESOURCE}`,
        ACCESS_TOKEN_TTL: String(TTL),
        OAUTH_REGISTRATION: "open",
      }),
    ],
    { quiet: true },
  );
  const inspector = ["--inspector-port", String(MCP_PORT + 1000)];
  start(
    "wrangler",
    ["dev", "-c", "examples/mcp-server/wrangler.toml", "--port", String(MCP_PORT), ...inspector, ...vars({ ISSUER, RESOURCE: MCP_URL, SCOPE })],
    {
      quiet: true,
    },
  );
  await Promise.all([waitFor(`${ISSUER}/health`, "the API", 90), waitFor(PRM_URL, "the MCP server", 90)]);
}, 120_000);

afterAll(() => {
  documents?.close();
  stop();
  rmSync(state, { recursive: true, force: true });
});

describe("the example MCP server", () => {
  it("publishes its protected resource metadata and challenges a request without a token", async () => {
    const expected = { resource: MCP_URL, authorization_servers: [ISSUER], scopes_supported: [SCOPE], bearer_methods_supported: ["header"] };
    for (const url of [PRM_URL, `http://localhost:${MCP_PORT}/.well-known/oauth-protected-resource`]) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject(expected);
    }
    const res = await initialize();
    expect(res.status).toBe(401);
    const challenge = res.headers.get("www-authenticate")!;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${PRM_URL}"`);
    expect(challenge).not.toContain("error=");
    const bad = await initialize("not.a.token");
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });
});

/**
 * How the MCP client is known to the API, as the SDK sees it: a client_id the provider already has
 * (pre-registered by an operator), or none, so the SDK registers it (RFC 7591) with the provider's
 * client metadata and hands the answer to saveClientInformation.
 */
interface Variant {
  clientId?: string; // pre-registered
  authMethod: "none" | "client_secret_basic";
}

/**
 * The SDK's whole journey from the MCP server's URL: the 401, discovery (RFC 9728, then RFC 8414),
 * registration when the client has no id, consent, the code's exchange, listTools and whoami, then a
 * refresh of its own when the access token ran out (ACCESS_TOKEN_TTL), with nobody asked to consent.
 */
async function journey(variant: Variant) {
  const user = await person("mcp");
  const provider = new TestProvider(user, variant.clientId ? { client_id: variant.clientId } : undefined, variant.authMethod);
  const log: string[] = [];
  const clientAuth: string[] = [];
  const transport = () => new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: recordingFetch(log, clientAuth) });
  const newClient = () => new Client({ name: "edge-auth-mcp-test", version: "1.0.0" });

  // First contact: no token. The SDK discovers everything from the 401 and sends the person to consent.
  const first = transport();
  await expect(newClient().connect(first)).rejects.toThrow(UnauthorizedError);
  expect(provider.code).toBeTruthy();
  expect(log.slice(0, 3)).toEqual([`POST ${MCP_URL} 401`, `GET ${PRM_URL} 200`, `GET ${ISSUER}/.well-known/oauth-authorization-server 200`]);
  const registered = log.includes(`POST ${ISSUER}/oauth2/register 201`);
  expect(registered).toBe(!variant.clientId);
  const clientId = provider.clientInformation()!.client_id;
  if (variant.clientId) expect(clientId).toBe(variant.clientId);
  else expect(Boolean(provider.clientInformation()!.client_secret)).toBe(variant.authMethod !== "none");

  // Back from consent: the code is exchanged (PKCE verifier, resource) at the API's token endpoint.
  await first.finishAuth(provider.code!);
  expect(log.at(-1)).toBe(`POST ${ISSUER}/oauth2/token 200`);
  const tokens = provider.tokens()!;
  expect(tokens.refresh_token).toBeTruthy();
  const claims = decodeJwt(tokens.access_token);
  expect(claims).toMatchObject({ iss: ISSUER, aud: MCP_URL, sub: user.id, client_id: clientId, scope: SCOPE });
  // The SDK binds what it keeps to the authorization server it came from.
  expect(provider.clientInformation()!.issuer).toBe(ISSUER);

  const client = newClient();
  await client.connect(transport());
  const tools = await client.listTools();
  expect(tools.tools.map((t) => t.name)).toEqual(["whoami"]);
  expect(await whoami(client)).toEqual({ user_id: user.id, client_id: clientId, scopes: [SCOPE] });

  // The access token runs out: the MCP server refuses it, and the SDK refreshes (the refresh token
  // rotates) and calls again.
  await sleep(claims.exp! * 1000 - Date.now() + 1500);
  const expired = await initialize(tokens.access_token);
  expect(expired.status).toBe(401);
  expect(expired.headers.get("www-authenticate")).toContain('error="invalid_token"');
  const codeBefore = provider.code;
  log.length = 0;
  expect(await whoami(client)).toEqual({ user_id: user.id, client_id: clientId, scopes: [SCOPE] });
  expect(log).toEqual([
    `POST ${MCP_URL} 401`,
    `GET ${PRM_URL} 200`,
    `GET ${ISSUER}/.well-known/oauth-authorization-server 200`,
    `POST ${ISSUER}/oauth2/token 200`,
    `POST ${MCP_URL} 200`,
  ]);
  expect(provider.code).toBe(codeBefore);
  const renewed = provider.tokens()!;
  expect(renewed.access_token).not.toBe(tokens.access_token);
  expect(renewed.refresh_token).toBeTruthy();
  expect(renewed.refresh_token).not.toBe(tokens.refresh_token);
  expect(decodeJwt(renewed.access_token)).toMatchObject({ aud: MCP_URL, sub: user.id, client_id: clientId, scope: SCOPE });
  // The code's exchange and the refresh, each authenticated as the client registered.
  expect(clientAuth).toEqual([variant.authMethod, variant.authMethod]);
  await client.close();
}

// Concurrent: each waits a minute for its access token to run out; they share nothing but the servers.
describe.concurrent("the MCP SDK's client, from the MCP server's URL alone", () => {
  it("as a pre-registered public client", () => journey({ clientId: preRegister(SCOPE), authMethod: "none" }), 150_000);
  it("as a public client that registers itself (RFC 7591)", () => journey({ authMethod: "none" }), 150_000);
  it(
    "as a confidential client that registers itself (RFC 7591; client_secret_basic at the token endpoint)",
    () => journey({ authMethod: "client_secret_basic" }),
    150_000,
  );
  // The SDK itself offers a document's URL as client_id only when it is https (clientMetadataUrl); a
  // loopback document cannot be https here, so the provider hands the URL over as its client_id, and
  // the API fetches the document (loopback allowed: ISSUER is local).
  it("as a client known by its client ID metadata document", () => journey({ clientId: documentUrl, authMethod: "none" }), 150_000);
});

describe("tokens the MCP server refuses", () => {
  it("a token the API issued for another resource: 401 invalid_token", async () => {
    const user = await person("other");
    const clientId = preRegister(`${SCOPE} profile`);
    const token = await tokenFor(clientId, user, { resource: OTHER_RESOURCE, scope: SCOPE });
    expect(decodeJwt(token)).toMatchObject({ aud: OTHER_RESOURCE, scope: SCOPE });
    const res = await initialize(token);
    expect(res.status).toBe(401);
    const challenge = res.headers.get("www-authenticate")!;
    expect(challenge).toContain('error="invalid_token"');
    expect(challenge).toContain(`resource_metadata="${PRM_URL}"`);
    // The same person and app with a token for the MCP server: accepted (the refusal was the audience).
    const good = await tokenFor(clientId, user, { resource: MCP_URL, scope: SCOPE });
    expect((await initialize(good)).status).toBe(200);
  });

  it("a token for the MCP server without its scope: 403 insufficient_scope naming the scope", async () => {
    const user = await person("noscope");
    const clientId = preRegister(`${SCOPE} profile`);
    const token = await tokenFor(clientId, user, { resource: MCP_URL, scope: "profile" });
    expect(decodeJwt(token)).toMatchObject({ aud: MCP_URL, scope: "profile" });
    const res = await initialize(token);
    expect(res.status).toBe(403);
    const challenge = res.headers.get("www-authenticate")!;
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain(`scope="${SCOPE}"`);
    expect(challenge).toContain(`resource_metadata="${PRM_URL}"`);
  });

  it("the API's own first-party access token: 401 (another audience, and not for apps)", async () => {
    const user = await person("firstparty");
    const res = await initialize(user.token);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });
});
