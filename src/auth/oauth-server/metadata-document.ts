import { z } from "zod";
import type { Config } from "../../config";
import { findClient, upsertSourcedClient } from "../../db/oauth-clients";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { log } from "../../log";
import { redirectUriProblem } from "./client-metadata";
import { DocumentRefusal, documentUrlProblem, fetchDocument } from "./document-fetch";
import { OIDC_SCOPES, scopesOf } from "./policy";

/**
 * Clients known by a client ID metadata document (draft-ietf-oauth-client-id-metadata-document; the
 * MCP authorization spec 2025-11-25 prefers it to dynamic registration): the client_id is an https
 * URL, and the JSON there names the client and its redirect URIs. The row in oauth_clients (source
 * "metadata") is a cache of that document, refetched when it lapses.
 */

// The draft lets the server bound the cache: HTTP's max-age, held between these (seconds).
const CACHE_MIN = 300;
const CACHE_MAX = 86_400;
const CACHE_DEFAULT = 3_600;

export const cacheSeconds = (maxAge: number | null) => Math.min(CACHE_MAX, Math.max(CACHE_MIN, maxAge ?? CACHE_DEFAULT));

// Shown on the consent page: no control or bidirectional-override characters (a name that reads as another).
const displayable = /^[^\p{Cc}\u202a-\u202e\u2066-\u2069]*$/u;

/** The document's fields this server uses (RFC 7591 names); any others are ignored. */
const documentSchema = z.object({
  client_id: z.string(),
  client_name: z.string().trim().min(1).max(100).regex(displayable),
  client_uri: z.string().max(512).optional(),
  redirect_uris: z.array(z.string().min(1).max(512)).min(1).max(20),
  grant_types: z.array(z.string()).max(10).optional(),
  response_types: z.array(z.string()).max(10).optional(),
  token_endpoint_auth_method: z.string().optional(),
  scope: z.string().max(1024).optional(),
  client_secret: z.unknown().optional(),
  client_secret_expires_at: z.unknown().optional(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
});

/** A public client may use these; client_credentials needs a client that authenticates, which a document client cannot. */
const PUBLIC_GRANTS = ["authorization_code", "refresh_token"];
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/**
 * The client a fetched document describes, or DocumentRefusal. The draft: its client_id is exactly the
 * URL it was fetched from; no client_secret, no shared-secret auth method, no private key material.
 * A document client is public (token_endpoint_auth_method "none", or absent: the RFC 7591 default
 * client_secret_basic cannot apply without a secret); private_key_jwt is not offered (yet).
 */
function documentClient(config: Pick<Config, "OAUTH_SCOPES">, url: string, json: unknown) {
  const parsed = documentSchema.safeParse(json);
  if (!parsed.success) throw new DocumentRefusal(`invalid_document:${parsed.error.issues[0]?.path.join(".") ?? ""}`);
  const doc = parsed.data;
  if (doc.client_id !== url) throw new DocumentRefusal("client_id_mismatch");
  if (doc.client_secret !== undefined || doc.client_secret_expires_at !== undefined) throw new DocumentRefusal("shared_secret");
  const method = doc.token_endpoint_auth_method ?? "none";
  if (method.startsWith("client_secret")) throw new DocumentRefusal("shared_secret_auth_method");
  if (method !== "none") throw new DocumentRefusal("unsupported_auth_method");
  if (doc.jwks?.keys.some((k) => PRIVATE_JWK_MEMBERS.some((m) => m in k))) throw new DocumentRefusal("private_key_material");
  if (doc.response_types && !doc.response_types.includes("code")) throw new DocumentRefusal("no_code_response_type");
  // Grant types this server does not give a public client are dropped (RFC 7591 2 lets the server
  // decide); without the code grant the client has no way in at all.
  const grantTypes = PUBLIC_GRANTS.filter((g) => (doc.grant_types ?? ["authorization_code"]).includes(g));
  if (!grantTypes.includes("authorization_code")) throw new DocumentRefusal("no_authorization_code_grant");
  if (doc.redirect_uris.some((u) => redirectUriProblem(u) !== null)) throw new DocumentRefusal("redirect_uri_not_allowed");
  // The site shown on the consent page, only on the document's own origin: a document on evil.example
  // naming https://github.com as its site would borrow a trust it has not earned. Else dropped, not refused.
  const uri = doc.client_uri && URL.canParse(doc.client_uri) && new URL(doc.client_uri).origin === new URL(url).origin ? doc.client_uri : null;
  // Without a scope the client may ask for any the deployment knows; the user's consent decides.
  const scope = doc.scope !== undefined ? scopesOf(doc.scope).join(" ") : [...OIDC_SCOPES, ...config.OAUTH_SCOPES].join(" ");
  return { id: url, name: doc.client_name, uri, redirectUris: [...new Set(doc.redirect_uris)], grantTypes, scope };
}

/** Logged by reason and by the URL without its query (attacker-chosen text stays short); never the document. */
function refused(deps: Deps, url: string, reason: string): null {
  const shown = URL.canParse(url) ? `${new URL(url).origin}${new URL(url).pathname}`.slice(0, 300) : undefined;
  log("client_document_refused", { request_id: deps.requestId, client_id: shown, reason }, "warn");
  return null;
}

/**
 * The client whose id is the URL `url`, from its cached row while that is fresh, else from the
 * document fetched again; null when documents are off, the URL may not be fetched, the document is
 * refused, or an admin disabled the client. A lapsed row whose document cannot be fetched is refused,
 * not served stale: the draft forbids caching errors, and a client that lost its document (or its
 * domain) must not keep asking users on the strength of an old copy. `cached`: the row the caller
 * already read (undefined: read here).
 */
export async function clientFromDocument(deps: Deps, url: string, cached?: OAuthClient | null): Promise<OAuthClient | null> {
  const { config } = deps;
  if (config.OAUTH_CLIENT_METADATA_DOCUMENTS !== "on") return null;
  const problem = documentUrlProblem(config, url);
  if (problem) return refused(deps, url, problem);
  const row = cached === undefined ? await findClient(deps.db, url) : cached;
  if (row && (row.source !== "metadata" || row.disabledAt !== null)) return null; // not a document's, or disabled by an admin
  const now = new Date();
  if (row?.expiresAt && row.expiresAt > now) return row;
  try {
    const { json, maxAge } = await fetchDocument(url);
    const client = documentClient(config, url, json);
    const expiresAt = new Date(now.getTime() + cacheSeconds(maxAge) * 1000);
    // A document client is public: no secret, no resources of its own.
    const stored = await upsertSourcedClient(deps.db, { ...client, secretHash: null, resources: [], source: "metadata", expiresAt }, now);
    // Nothing back: an admin registered this URL meanwhile. Disabled meanwhile: refused like above.
    return stored && stored.disabledAt === null ? stored : null;
  } catch (err) {
    if (err instanceof DocumentRefusal) return refused(deps, url, err.reason);
    throw err;
  }
}
