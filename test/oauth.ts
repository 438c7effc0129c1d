import { env } from "cloudflare:workers";
import { sha256Base64Url } from "../src/encoding";
import { call, PASSWORD } from "./helpers";

/** Test helpers for the authorization server (docs/oauth-server.md). */

const random = (bytes = 32) =>
  btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

/** A PKCE pair (RFC 7636, S256). */
export async function pkce() {
  const verifier = random(32);
  return { verifier, challenge: await sha256Base64Url(verifier) };
}

export interface TestClientOptions {
  name?: string;
  redirectUris?: string[];
  confidential?: boolean;
  grantTypes?: string[];
  scope?: string;
  resources?: string[];
}

/**
 * A registered client, written straight into the local D1 as an admin's registration would be (the
 * admin API itself is tested in oauth-clients.test.ts). Returns its id and, when confidential, its secret.
 */
export async function createTestClient(opts: TestClientOptions = {}) {
  const id = `test_${random(12)}`;
  const secret = opts.confidential ? random(32) : undefined;
  await env.DB.prepare(
    "INSERT INTO oauth_clients (id, name, uri, redirect_uris, secret_hash, grant_types, scope, resources, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'admin', ?)",
  )
    .bind(
      id,
      opts.name ?? "Test App",
      "https://app.example/",
      JSON.stringify(opts.redirectUris ?? ["https://app.example/callback"]),
      secret ? await sha256Base64Url(secret) : null,
      JSON.stringify(opts.grantTypes ?? ["authorization_code", "refresh_token"]),
      opts.scope ?? "openid profile email offline_access",
      JSON.stringify(opts.resources ?? []),
      Date.now(),
    )
    .run();
  return { id, secret, redirectUri: (opts.redirectUris ?? ["https://app.example/callback"])[0]! };
}

export interface TokenRequestOptions {
  basic?: [string, string]; // client_secret_basic
  ip?: string;
  path?: string; // /oauth2/token unless said
  bindings?: Partial<Env>;
  ctx?: ExecutionContext; // with bindings: to wait on what runs after the answer
}

/** A form POST to the token endpoint (or `path`), as an OAuth client sends it. */
export async function tokenRequest(form: Record<string, string | string[]>, opts: TokenRequestOptions = {}) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (opts.basic) headers.authorization = `Basic ${btoa(`${encodeURIComponent(opts.basic[0])}:${encodeURIComponent(opts.basic[1])}`)}`;
  if (opts.ip) {
    headers["cf-connecting-ip"] = opts.ip;
    headers["user-agent"] = "TestApp/1.0";
  }
  return call("POST", opts.path ?? "/oauth2/token", { body: body.toString(), headers, bindings: opts.bindings, ctx: opts.ctx });
}

export interface ApprovalOptions {
  scope?: string;
  resource?: string;
  nonce?: string;
  bindings?: Partial<Env>; // for every step (a configuration such as OAUTH_CLIENTS)
}

/**
 * A code for `client`, approved by `user` the way a person does it: the app sends the browser to
 * GET /oauth2/authorize, the consent page (signed in as `user`) opens the request and approves it.
 */
export async function approvedCode(
  client: { id: string; redirectUri: string },
  user: { access_token: string; user: { id: string } },
  opts: ApprovalOptions = {},
) {
  const { verifier, challenge } = await pkce();
  const query = new URLSearchParams({
    response_type: "code",
    client_id: client.id,
    redirect_uri: client.redirectUri,
    scope: opts.scope ?? "openid profile",
    state: "st",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...(opts.resource ? { resource: opts.resource } : {}),
    ...(opts.nonce ? { nonce: opts.nonce } : {}),
  });
  const { bindings } = opts;
  const started = await call("GET", `/oauth2/authorize?${query}`, { bindings });
  if (started.status !== 302) throw new Error(`authorize answered ${started.status}: ${started.text}`);
  const id = new URLSearchParams(new URL(started.headers.get("location")!).hash.slice(1)).get("authorize")!;
  const opened = await call("GET", `/oauth2/requests/${id}`, { token: user.access_token, bindings });
  if (opened.status !== 200) throw new Error(`the request answered ${opened.status}: ${opened.text}`);
  const approved = await call("POST", `/oauth2/requests/${id}/approve`, { token: user.access_token, bindings });
  const back = new URL(approved.body?.redirect_to ?? "http://invalid/");
  const code = back.searchParams.get("code");
  if (!code) throw new Error(`the approval answered ${approved.status}: ${approved.text}`);
  return { code, verifier, requestId: id };
}

/** Registers a client through the admin API (POST /admin/clients), with the admin's step-up. */
export async function registerClient(adminToken: string, body: Record<string, unknown> = {}, bindings?: Partial<Env>) {
  return call("POST", "/admin/clients", {
    token: adminToken,
    body: { name: "Admin App", redirect_uris: ["https://app.example/callback"], type: "confidential", current_password: PASSWORD, ...body },
    bindings,
  });
}

export interface TestGrant {
  userId: string;
  clientId: string;
  scope?: string;
  resource?: string | null;
  createdAt?: number;
  lastUsedAt?: number;
  /** When its newest access token expires: in the future, its revocation needs a KV entry. */
  accessExpiresAt?: number;
  revokedAt?: number | null;
}

/** A grant (a sessions row with a client_id), written straight into D1 as the token endpoint would. Returns its id. */
export async function insertGrant(g: TestGrant): Promise<string> {
  const id = crypto.randomUUID();
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO sessions (id, user_id, refresh_token_hash, user_agent, created_at, last_used_at, access_expires_at, expires_at, revoked_at, client_id, scope, resource) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
  )
    .bind(
      id,
      g.userId,
      random(32),
      g.createdAt ?? now - 60_000,
      g.lastUsedAt ?? now - 30_000,
      g.accessExpiresAt ?? now + 600_000,
      now + 86_400_000,
      g.revokedAt ?? null,
      g.clientId,
      g.scope ?? "openid profile",
      g.resource ?? null,
    )
    .run();
  return id;
}

/** A remembered consent, as an approval writes it. */
export async function insertConsent(userId: string, clientId: string, scope = "openid profile", resource = "") {
  const now = Date.now();
  await env.DB.prepare("INSERT INTO oauth_consents (user_id, client_id, resource, scope, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(userId, clientId, resource, scope, now, now)
    .run();
}

/** An authorization request in flight, approved by `userId` when given. Returns its id. */
export async function insertRequest(clientId: string, userId?: string): Promise<string> {
  const id = random(32);
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO oauth_requests (id, client_id, redirect_uri, scope, code_challenge, created_at, expires_at, user_id, approved, code_hash, code_expires_at) VALUES (?, ?, 'https://app.example/callback', 'openid', ?, ?, ?, ?, ?, ?, ?)",
  )
    .bind(id, clientId, random(32), now, now + 600_000, userId ?? null, userId ? 1 : null, userId ? random(32) : null, userId ? now + 60_000 : null)
    .run();
  return id;
}

/** The grant's row as D1 has it. */
export const grantRow = (id: string) =>
  env.DB.prepare("SELECT id, revoked_at, client_id FROM sessions WHERE id = ?").bind(id).first<{ id: string; revoked_at: number | null; client_id: string }>();

/** Counts rows of a table for one client. */
export const countFor = async (table: "oauth_requests" | "oauth_consents" | "oauth_clients", clientId: string) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${table === "oauth_clients" ? "id" : "client_id"} = ?`)
    .bind(clientId)
    .first<{ n: number }>())!.n;

/** The token request exchanging `code` for `client` (a public one: client_id in the form), as its app sends it. */
export const codeForm = (client: { id: string; redirectUri: string }, code: { code: string; verifier: string }): Record<string, string> => ({
  grant_type: "authorization_code",
  code: code.code,
  redirect_uri: client.redirectUri,
  code_verifier: code.verifier,
  client_id: client.id,
});
