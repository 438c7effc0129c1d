import { audit } from "../../audit";
import { batch } from "../../db/batch";
import { consentsOf, deleteConsents, deleteUserRequests, grantsByClient } from "../../db/oauth-clients";
import { revokeGrants } from "../../db/oauth-grants";
import type { Deps } from "../../deps";
import { Refusal } from "../core/errors";
import type { AccessClaims } from "../core/tokens";
import { revokeGrantsInKv } from "./grants-kv";
import { scopesOf } from "./policy";

/**
 * The apps a user let in (GET /account/apps) and taking one's access back (DELETE). An app is listed
 * while it holds a live grant or a remembered consent: the consent alone lets it get a new grant
 * without asking (prompt=none), so the user must be able to see and end it too. Knows nothing of HTTP.
 */

export interface ConnectedApp {
  clientId: string;
  name: string;
  uri: string | null;
  scopes: string[];
  resources: string[];
  connectedAt: Date;
  lastUsedAt: Date | null;
  grants: number;
  consentRemembered: boolean;
}

// Far more apps than anyone connects; the list is not paged.
const MAX_APPS = 200;

const strings = (json: string) => (JSON.parse(json) as (string | null)[]).filter((s): s is string => typeof s === "string" && s !== "");

/** The user's apps, the earliest connected first (a list to look at: may lag a moment). */
export async function connectedApps(deps: Deps, claims: AccessClaims): Promise<ConnectedApp[]> {
  const db = deps.replica();
  const [grants, consents] = await Promise.all([grantsByClient(db, claims.sub, new Date(), MAX_APPS), consentsOf(db, claims.sub, MAX_APPS)]);
  const apps = new Map<string, ConnectedApp>();
  for (const g of grants) {
    apps.set(g.clientId, {
      clientId: g.clientId,
      name: g.name,
      uri: g.uri,
      scopes: [...new Set(strings(g.scopes).flatMap(scopesOf))],
      resources: strings(g.resources),
      connectedAt: new Date(g.since),
      lastUsedAt: new Date(g.lastUsed),
      grants: g.grants,
      consentRemembered: false,
    });
  }
  for (const c of consents) {
    const app = apps.get(c.clientId);
    if (!app && apps.size >= MAX_APPS) continue;
    const entry: ConnectedApp = app ?? {
      clientId: c.clientId,
      name: c.name,
      uri: c.uri,
      scopes: [],
      resources: [],
      connectedAt: c.createdAt,
      lastUsedAt: null,
      grants: 0,
      consentRemembered: true,
    };
    entry.consentRemembered = true;
    entry.scopes = [...new Set([...entry.scopes, ...scopesOf(c.scope)])];
    if (c.resource !== "") entry.resources = [...new Set([...entry.resources, c.resource])];
    apps.set(c.clientId, entry);
  }
  return [...apps.values()].sort((a, b) => a.connectedAt.getTime() - b.connectedAt.getTime());
}

/**
 * Takes an app's access back: the user's grants of it end (D1, then KV), the consents are forgotten
 * (its next request asks again) and an approved code not yet exchanged dies with its request, all in
 * one batch. Nothing of this user's for that app (another user's app, an unknown id): not_found.
 * A failed KV write answers 503; repeating it completes the revocation.
 */
export async function disconnectApp(deps: Deps, claims: AccessClaims, clientId: string) {
  const now = new Date();
  const { revoked, consents, requests } = await batch(deps.db, {
    revoked: revokeGrants(deps.db, { clientId, userId: claims.sub }, now),
    consents: deleteConsents(deps.db, claims.sub, clientId),
    requests: deleteUserRequests(deps.db, claims.sub, clientId),
  });
  if (revoked.length === 0 && consents.length === 0 && requests.length === 0) throw new Refusal("not_found", "No such connected app");
  await audit(deps, "oauth_app_disconnected", {
    user_id: claims.sub,
    session_id: claims.sid,
    client_id: clientId,
    grants_revoked: revoked.length,
    consents_removed: consents.length,
  });
  await revokeGrantsInKv(deps.kv, revoked, now);
  return { grantsRevoked: revoked.length, consentsRemoved: consents.length };
}
