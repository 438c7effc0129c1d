import { env } from "cloudflare:workers";
import { sha256Base64Url } from "../src/encoding";

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
