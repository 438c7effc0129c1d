import { logEvent } from "../../audit";
import { permissionsOf } from "../../config-orgs";
import { keyForExchange, touchApiKey } from "../../db/api-keys";
import { afterAnswer, type Deps } from "../../deps";
import { signServiceToken } from "../core/service-tokens";
import { accessUntil } from "../core/sign-in";
import { activeKeys } from "../core/signing-keys";
import { keyHash, parseKey } from "./format";

/**
 * An API key exchanged for an access token (OAuth 2.0 Token Exchange, RFC 8693; docs/api-keys.md):
 * the way a team's service turns its key into the kind of token every backend already verifies.
 * Knows nothing of HTTP or of the authorization server: the route maps ExchangeRefused to the
 * protocol's answer. What a refusal costs is the point: a malformed key costs no lookup, a wrong,
 * revoked or expired one one read and no write; guessing is limited per client before any lookup.
 */

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const API_KEY_TOKEN_TYPE = "urn:edge-auth:params:oauth:token-type:api-key";
export const ACCESS_TOKEN_TYPE_URN = "urn:ietf:params:oauth:token-type:access_token";

/** last_used_at is written at most this often per key. */
export const LAST_USED_EVERY_MS = 60_000;

/** A refusal in the protocol's words (RFC 6749 5.2): the route answers it as the token endpoint's other refusals. */
export class ExchangeRefused extends Error {
  constructor(
    readonly error: "invalid_request" | "invalid_grant" | "invalid_scope",
    readonly description: string,
  ) {
    super(description);
    this.name = "ExchangeRefused";
  }
}

/** The two limits the exchange takes, in its order: per client address before anything, then per key (by its hash) before the lookup. */
export interface ExchangeLimits {
  perClient: () => Promise<void>;
  perKey: (hash: string) => Promise<void>;
}

export interface ExchangeInput {
  subject_token?: string;
  subject_token_type?: string;
  scope?: string;
}

export interface ExchangeAnswer {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE_URN;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
}

const invalidKey = () => new ExchangeRefused("invalid_grant", "The API key is invalid, revoked or expired");

export async function exchangeKey(deps: Deps, input: ExchangeInput, limits: ExchangeLimits): Promise<ExchangeAnswer> {
  if (!input.subject_token) throw new ExchangeRefused("invalid_request", "subject_token is required");
  if (input.subject_token_type !== API_KEY_TOKEN_TYPE) throw new ExchangeRefused("invalid_request", `subject_token_type must be ${API_KEY_TOKEN_TYPE}`);
  const refused = (reason: string, keyId?: string) => logEvent(deps, "api_key_exchange_refused", { reason, key_id: keyId });
  // A typo, a truncated paste or a look-alike: refused on its checksum, before any lookup or limit.
  const key = parseKey(input.subject_token);
  if (!key) {
    refused("malformed");
    throw invalidKey();
  }
  await limits.perClient();
  const hash = await keyHash(key);
  await limits.perKey(hash);
  const now = new Date();
  const requireVerified = deps.config.REQUIRE_VERIFIED_EMAIL === "on";
  const row = await keyForExchange(deps.db, hash, requireVerified);
  if (!row) {
    refused("unknown");
    throw invalidKey();
  }
  const reason = row.revokedAt
    ? "revoked"
    : row.expiresAt && row.expiresAt <= now
      ? "expired"
      : (row.userId && !row.userRoles) || (row.orgId && !row.orgSlug)
        ? "owner_gone"
        : null;
  if (reason) {
    refused(reason, row.id);
    throw invalidKey();
  }
  // Never more than the owner may do now: a user's current roles; what any role of the organization may do under ORG_ROLES as it is now.
  const allowedNow = row.userId ? row.userRoles! : permissionsOf(deps.config.ORG_ROLES, "owner");
  const keyScopes = row.scopes.filter((s) => allowedNow.includes(s));
  const asked = input.scope?.split(" ").filter(Boolean);
  if (asked && !asked.every((s) => keyScopes.includes(s))) {
    refused("scope", row.id);
    throw new ExchangeRefused("invalid_scope", "The scope asked for is wider than the key's");
  }
  const scope = asked ? keyScopes.filter((s) => asked.includes(s)) : keyScopes;
  const access = await signServiceToken(deps.config, await activeKeys(deps), {
    sub: row.userId ?? row.orgId!,
    keyId: row.id,
    ownerType: row.userId ? "user" : "organization",
    scope,
    org: row.orgId ? { id: row.orgId, slug: row.orgSlug! } : undefined,
    now,
    expiresAt: accessUntil(deps.config, now),
  });
  // The last use, at most once a minute, after the answer: an exchange's answer path is its one read.
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= LAST_USED_EVERY_MS) {
    await afterAnswer(deps, "api_key_last_used", async () => {
      await touchApiKey(deps.db, row.id, now, LAST_USED_EVERY_MS);
    });
  }
  return { access_token: access.token, issued_token_type: ACCESS_TOKEN_TYPE_URN, token_type: "Bearer", expires_in: access.expiresIn, scope: scope.join(" ") };
}
