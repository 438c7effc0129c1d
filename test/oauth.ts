import { env } from "cloudflare:workers";
import { sha256Base64Url } from "../src/encoding";
import { call, decodeJwtPart } from "./helpers";

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
  return call("POST", opts.path ?? "/oauth2/token", { body: body.toString(), headers, bindings: opts.bindings });
}

export interface ApprovalOptions {
  scope?: string;
  resource?: string;
  nonce?: string;
}

/**
 * A code for `client`, approved by `user` (signed in with `access_token`): the request as the
 * authorization endpoint stores it and the approval as the app's consent page makes it.
 */
export async function approvedCode(
  client: { id: string; redirectUri: string },
  user: { access_token: string; user: { id: string } },
  opts: ApprovalOptions = {},
) {
  const { verifier, challenge } = await pkce();
  const code = random(32);
  const sid = decodeJwtPart(user.access_token, 1).sid as string;
  const now = Date.now();
  await env.DB.prepare(
    `INSERT INTO oauth_requests (id, client_id, redirect_uri, state, scope, resource, code_challenge, nonce, created_at, expires_at, session_id, user_id, decided_at, approved, auth_time, amr, code_hash, code_expires_at)
     SELECT ?, ?, ?, 'st', ?, ?, ?, ?, ?, ?, s.id, s.user_id, ?, 1, s.auth_time, s.amr, ?, ? FROM sessions s WHERE s.id = ?`,
  )
    .bind(
      random(16),
      client.id,
      client.redirectUri,
      opts.scope ?? "openid profile",
      opts.resource ?? null,
      challenge,
      opts.nonce ?? null,
      now,
      now + 600_000,
      now,
      await sha256Base64Url(code),
      now + 60_000,
      sid,
    )
    .run();
  return { code, verifier };
}
