import { findClient } from "../../db/oauth-clients";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { sha256Base64Url } from "../../encoding";
import { configuredClient, configuredClients } from "./configured-clients";
import { looksLikeDocumentId } from "./document-fetch";
import { OAuthRefusal } from "./errors";
import { clientFromDocument } from "./metadata-document";

/** How a client proves who it is at the token and revocation endpoints (RFC 6749 2.3). */
export interface ClientCredentials {
  clientId?: string;
  secret?: string;
  method: "client_secret_basic" | "client_secret_post" | "none";
}

const malformed = (what: string) => new OAuthRefusal("invalid_request", what);
const refused = () => new OAuthRefusal("invalid_client", "Client authentication failed");

/** From the Authorization header (Basic, each half form-urlencoded: RFC 6749 2.3.1) or the form; both at once is refused. */
export function credentialsOf(authorization: string | undefined, form: { client_id?: string; client_secret?: string }): ClientCredentials {
  if (authorization?.startsWith("Basic ")) {
    if (form.client_secret !== undefined) throw malformed("Use one way to authenticate the client, not two");
    let decoded: string;
    try {
      decoded = atob(authorization.slice(6).trim());
    } catch {
      throw refused();
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) throw refused();
    const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
    let clientId: string;
    let secret: string;
    try {
      [clientId, secret] = [unform(decoded.slice(0, colon)), unform(decoded.slice(colon + 1))];
    } catch {
      throw refused();
    }
    if (form.client_id !== undefined && form.client_id !== clientId) throw malformed("client_id differs from the authenticated client");
    return { clientId, secret, method: "client_secret_basic" };
  }
  if (form.client_secret !== undefined) return { clientId: form.client_id, secret: form.client_secret, method: "client_secret_post" };
  return { clientId: form.client_id, method: "none" };
}

const encoder = new TextEncoder();

/** Whether `secret` is the one whose SHA-256 is `hash`, in constant time (both sides are hashes of equal length). */
async function secretMatches(secret: string, hash: string): Promise<boolean> {
  const a = encoder.encode(await sha256Base64Url(secret));
  const b = encoder.encode(hash);
  return a.length === b.length && crypto.subtle.timingSafeEqual(a, b);
}

/**
 * The client, authenticated: a confidential one by its secret, a public one by its id alone (PKCE
 * binds its codes). Unknown, disabled, a wrong secret, a confidential client without its secret or a
 * public one sending one: invalid_client (401), one answer for all.
 */
export async function authenticateClient(deps: Deps, creds: ClientCredentials): Promise<OAuthClient> {
  if (!creds.clientId) throw refused();
  const client = await usableClient(deps, creds.clientId);
  if (!client) throw refused();
  if (client.secretHash === null) {
    if (creds.secret !== undefined) throw refused();
    return client;
  }
  if (creds.secret === undefined || !(await secretMatches(creds.secret, client.secretHash))) throw refused();
  return client;
}

/** The client if it exists and is not disabled (nor a lapsed registration), else null. A client declared in OAUTH_CLIENTS comes first. */
export async function usableClient(deps: Deps, clientId: string): Promise<OAuthClient | null> {
  if (clientId.length > 512) return null;
  const declared = configuredClients(deps.config).get(clientId);
  if (declared) return configuredClient(deps, declared);
  const client = await findClient(deps.db, clientId);
  // A URL id is a client ID metadata document's, unless an admin registered that URL (metadata-document.ts).
  if (looksLikeDocumentId(deps.config, clientId) && (!client || client.source === "metadata")) return clientFromDocument(deps, clientId, client ?? null);
  // A "config" row whose client left OAUTH_CLIENTS (or whose entry is off): its requests, codes and refreshes fail.
  if (!client || client.disabledAt !== null || client.source === "config") return null;
  if (client.source === "dynamic" && client.firstTokenAt === null && client.expiresAt !== null && client.expiresAt <= new Date()) return null;
  return client;
}
