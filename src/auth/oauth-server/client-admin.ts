import { audit } from "../../audit";
import { batch } from "../../db/batch";
import { type ClientCursor, deleteClient, findClient, insertClient, listClients, type OAuthClientChange, updateClient } from "../../db/oauth-clients";
import { revokeGrants } from "../../db/oauth-grants";
import type { OAuthClient } from "../../db/oauth-server-tables";
import type { Deps } from "../../deps";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { Refusal } from "../core/errors";
import { type StepUpAsk, type StepUpInput, stepUp } from "../core/step-up";
import type { AccessClaims } from "../core/tokens";
import { type ClientDeclaration, checkedClient, checkRedirectUris, checkResources, checkScope, checkUri, secretOf } from "./client-metadata";
import { isDeclared } from "./configured-clients";
import { revokeGrantsInKv } from "./grants-kv";

/**
 * What admins do with the apps that may ask users for access (routes/admin-clients.ts, under the
 * admin guard): register, list, change, disable, delete. Registering one and changing where its
 * codes go or what it may ask for take the acting admin's step-up (manage_clients); disabling and
 * deleting only take access away, and end every grant of the client (D1, then KV). Knows nothing of HTTP.
 */

export type { GrantType } from "./client-metadata";
export type ClientInput = ClientDeclaration;
export type ClientPatch = Partial<Pick<ClientInput, "name" | "uri" | "redirect_uris" | "scope" | "resources">> & { disabled?: boolean };

/** Registers a client (step-up manage_clients). A confidential one's secret is returned this once; only its SHA-256 is kept. */
export async function createClient(deps: Deps, ask: StepUpAsk<"manage_clients">, input: ClientInput, check: StepUpInput) {
  const row = checkedClient(deps.config, input);
  const proof = await stepUp(deps, ask, check);
  const secret = input.type === "confidential" ? secretOf() : undefined;
  const client: OAuthClient = {
    ...row,
    id: toBase64Url(randomBytes(16)),
    secretHash: secret ? await sha256Base64Url(secret) : null,
    source: "admin",
    createdAt: new Date(),
    disabledAt: null,
    expiresAt: null,
    firstTokenAt: null,
  };
  await insertClient(deps.db, client);
  await audit(deps, "oauth_client_created", { user_id: proof.userId, session_id: proof.sessionId, client_id: client.id, type: input.type });
  return { client, secret };
}

/** Every client, newest first (a list to look at: may lag a moment). */
export const clientPage = (deps: Deps, limit: number, after?: ClientCursor) => listClients(deps.replica(), limit, after);

export async function clientForAdmin(deps: Deps, id: string): Promise<OAuthClient> {
  const client = await findClient(deps.db, id);
  if (!client) throw new Refusal("not_found", "No such client");
  return client;
}

/** Only turns it off or on again: what the admin API may do to a client declared in OAUTH_CLIENTS. */
const onlySwitches = (patch: ClientPatch) => Object.entries(patch).every(([k, v]) => k === "disabled" || v === undefined);

/** The configuration is the one place a declared client is changed: the next use would undo an admin's edit. */
const declaredElsewhere = () =>
  new Refusal(
    "forbidden",
    "This client is declared in the configuration (OAUTH_CLIENTS): change or remove it there; the admin API may only disable or enable it",
  );

/** Only takes access away: no step-up. */
const onlyDisables = (patch: ClientPatch) => patch.disabled === true && Object.values({ ...patch, disabled: undefined }).every((v) => v === undefined);

/**
 * An admin changes a client. Disabling it ends every grant of it in the same batch, then in KV: a
 * failed KV write answers 503 and repeating the change completes it. Anything but disabling alone
 * takes the step-up manage_clients. Existing grants keep what they were granted; a refresh is judged
 * against the client as it is then (auth/oauth-server/policy.ts).
 */
export async function updateClientByAdmin(deps: Deps, ask: StepUpAsk<"manage_clients">, id: string, patch: ClientPatch, check: StepUpInput) {
  const before = await clientForAdmin(deps, id);
  // A "config" row whose client left the configuration is refused too: it is unusable, and deleting it ends its grants.
  if ((before.source === "config" || isDeclared(deps.config, id)) && !onlySwitches(patch)) throw declaredElsewhere();
  const change: OAuthClientChange = {
    name: patch.name,
    uri: patch.uri === undefined ? undefined : checkUri(patch.uri),
    redirectUris: patch.redirect_uris && checkRedirectUris(patch.redirect_uris, before.grantTypes.includes("authorization_code")),
    scope: patch.scope === undefined ? undefined : checkScope(deps.config, patch.scope),
    resources: patch.resources && checkResources(deps.config, patch.resources),
  };
  const proof = onlyDisables(patch) ? undefined : await stepUp(deps, ask, check);
  const now = new Date();
  const done = await batch(deps.db, {
    updated: updateClient(deps.db, id, { ...change, disabled: patch.disabled }, now),
    revoked: patch.disabled ? revokeGrants(deps.db, { clientId: id }, now) : undefined,
  });
  const client = done.updated[0];
  if (!client) throw new Refusal("not_found", "No such client");
  const changed = Object.keys(patch).filter((k) => patch[k as keyof ClientPatch] !== undefined);
  // Audited before KV: a 503 below still leaves the record of what was done and by whom.
  await audit(deps, "oauth_client_updated", {
    user_id: ask.claims.sub,
    session_id: ask.claims.sid,
    client_id: id,
    changed: changed.join(","),
    disabled: patch.disabled,
    grants_revoked: done.revoked?.length,
    step_up: proof !== undefined,
  });
  if (done.revoked) await revokeGrantsInKv(deps.kv, done.revoked, now);
  return client;
}

/**
 * Deletes a client: first disabled with every grant ended (one batch) and KV written, then removed
 * (its requests in flight and consents go by cascade; the grants' rows stay, revoked, until the cron's
 * cleanup). A failed KV write leaves it disabled, not gone: repeating the delete completes it. A client
 * known by its metadata document stays, disabled: gone, its document would bring it back at its next use.
 * A client declared in OAUTH_CLIENTS is refused (forbidden): disable it, or remove it from there.
 */
export async function deleteClientByAdmin(deps: Deps, admin: AccessClaims, id: string): Promise<number> {
  // Its row would be written again on its next use; once it has left OAUTH_CLIENTS, its row may go.
  if (isDeclared(deps.config, id)) throw declaredElsewhere();
  const now = new Date();
  const { disabled, revoked } = await batch(deps.db, {
    disabled: updateClient(deps.db, id, { disabled: true }, now),
    revoked: revokeGrants(deps.db, { clientId: id }, now),
  });
  if (!disabled[0]) throw new Refusal("not_found", "No such client");
  await revokeGrantsInKv(deps.kv, revoked, now);
  if (disabled[0].source !== "metadata") await deleteClient(deps.db, id);
  await audit(deps, "oauth_client_deleted", { user_id: admin.sub, session_id: admin.sid, client_id: id, grants_revoked: revoked.length });
  return revoked.length;
}
