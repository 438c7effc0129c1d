import { audit } from "../../audit";
import { permissionsOf } from "../../config-orgs";
import { type ApiKey, type ApiKeyOwner, atKeyBound, findApiKey, insertApiKey, KEPT_PER_LIVE, listApiKeys, revokeApiKey, stillMember } from "../../db/api-keys";
import { roleOf } from "../../db/memberships";
import type { Deps } from "../../deps";
import { randomBytes, toBase64Url } from "../../encoding";
import { Refusal } from "../core/errors";
import { type StepUpAsk, type StepUpInput, stepUp } from "../core/step-up";
import type { AccessClaims } from "../core/tokens";
import { securityNotice } from "../mail/notices";
import { generateKey, keyHash, keyStart } from "./format";

/**
 * Creating, listing and revoking API keys (routes/api-keys.ts; docs/api-keys.md). A key belongs to
 * its creator, or to an organization (made by a member whose role may manage its keys: it outlives
 * that member's membership). It never does more than its creator may: a user's key, the user's roles;
 * an organization's, the creator's role's permissions. Knows nothing of HTTP.
 */

/** Live (unrevoked, unexpired) keys an owner may hold: the bound is in the insert itself. */
export const MAX_KEYS = 100;
/** At most this many keys in a list: the live ones, and the revoked or expired ones the cron has not removed yet. */
const LIST_LIMIT = 200;
const DAY_MS = 86_400_000;

export interface KeyInput {
  name: string;
  scopes: string[];
  expires_in_days?: number;
  org_id?: string;
}

const notAllowed = (wider: string[]) => new Refusal("scope_not_allowed", `Scopes wider than yours: ${wider.join(", ")}`);
const notFound = () => new Refusal("not_found", "No such organization, or you are not its member");

/** The caller's role in an organization they belong to; 404 when they do not (no enumeration), 403 without `permission`. */
async function roleWith(deps: Deps, orgId: string, userId: string, permission: string, unknown = notFound) {
  const role = await roleOf(deps.db, orgId, userId);
  if (!role) throw unknown();
  if (!permissionsOf(deps.config.ORG_ROLES, role).includes(permission)) throw new Refusal("forbidden", `Your role in this organization lacks ${permission}`);
  return role;
}

function checkScopes(asked: string[], allowed: string[]) {
  const wider = asked.filter((s) => !allowed.includes(s));
  if (wider.length) throw notAllowed(wider);
}

/** Creates a key (step-up create_api_key). Returns the row and the key, which is in this answer only. */
export async function createKey(deps: Deps, ask: StepUpAsk<"create_api_key">, input: KeyInput, check: StepUpInput) {
  const { claims } = ask;
  const scopes = [...new Set(input.scopes)];
  // Checked before the step-up (its proof is not spent on a request refused anyway), and the user's roles again as D1 has them after.
  let role: string | undefined;
  if (input.org_id) {
    role = await roleWith(deps, input.org_id, claims.sub, "keys:manage");
    checkScopes(scopes, permissionsOf(deps.config.ORG_ROLES, role));
  } else checkScopes(scopes, claims.roles);
  const proof = await stepUp(deps, ask, check);
  if (!input.org_id) checkScopes(scopes, proof.user.roles);
  const secret = generateKey();
  const now = new Date();
  const row: ApiKey = {
    id: toBase64Url(randomBytes(16)),
    keyHash: await keyHash(secret),
    start: keyStart(secret),
    name: input.name,
    userId: input.org_id ? null : claims.sub,
    orgId: input.org_id ?? null,
    createdBy: claims.sub,
    scopes,
    createdAt: now,
    expiresAt: input.expires_in_days ? new Date(now.getTime() + input.expires_in_days * DAY_MS) : null,
    revokedAt: null,
    lastUsedAt: null,
  };
  const owner = ownerOf(row);
  const inserted = await insertApiKey(deps.db, row, MAX_KEYS, input.org_id ? stillMember(input.org_id, claims.sub, role!) : undefined);
  if (!inserted.length) {
    if (await atKeyBound(deps.db, owner, now, MAX_KEYS))
      throw new Refusal(
        "too_many_api_keys",
        `At most ${MAX_KEYS} live keys per owner, and ${MAX_KEYS * KEPT_PER_LIVE} kept with revoked ones: revoke one, or wait for revoked ones to be removed`,
      );
    throw input.org_id ? notFound() : new Refusal("invalid_token", "This account may no longer hold keys");
  }
  await audit(deps, "api_key_created", {
    user_id: claims.sub,
    session_id: claims.sid,
    key_id: row.id,
    owner_type: owner.type,
    owner_id: owner.id,
    scopes: scopes.join(" "),
  });
  // A key is a way in for scripts: its owner hears of it, as of any other (a password reset revokes a user's keys).
  securityNotice(
    deps,
    proof.user,
    input.org_id ? `An API key "${row.name}" was created for an organization, by this account` : `An API key "${row.name}" was created for this account`,
  );
  return { key: row, secret };
}

export type { ApiKey };

export const ownerOf = (k: Pick<ApiKey, "userId" | "orgId">): ApiKeyOwner =>
  k.userId ? { type: "user", id: k.userId } : { type: "organization", id: k.orgId! };

/** The caller's own keys, or an organization's (keys:read). */
export async function listKeys(deps: Deps, claims: AccessClaims, orgId?: string): Promise<ApiKey[]> {
  if (orgId) await roleWith(deps, orgId, claims.sub, "keys:read");
  return listApiKeys(deps.db, orgId ? { type: "organization", id: orgId } : { type: "user", id: claims.sub }, LIST_LIMIT);
}

/**
 * Revokes a key: its owner, or a member whose role may manage the organization's keys. New exchanges
 * are refused at once (each reads D1); tokens already issued live out ACCESS_TOKEN_TTL. Revoking a
 * revoked key answers the same, and records nothing.
 */
export async function revokeKey(deps: Deps, claims: AccessClaims, id: string): Promise<void> {
  const noSuchKey = () => new Refusal("not_found", "No such key");
  const key = id.length <= 64 ? await findApiKey(deps.db, id) : undefined;
  // Another user's key, or an organization's the caller is not in: as if there were none.
  if (!key || (key.userId && key.userId !== claims.sub)) throw noSuchKey();
  if (key.orgId) await roleWith(deps, key.orgId, claims.sub, "keys:manage", noSuchKey);
  const revoked = await revokeApiKey(deps.db, id, new Date());
  if (!revoked) return;
  const owner = ownerOf(revoked);
  await audit(deps, "api_key_revoked", { user_id: claims.sub, session_id: claims.sid, key_id: id, owner_type: owner.type, owner_id: owner.id });
}
