import { audit, auditRowIfSession, logEvent } from "../../audit";
import { batch } from "../../db/batch";
import { exchangeCodeStatements, usedCode } from "../../db/oauth-grants";
import type { OAuthClient } from "../../db/oauth-server-tables";
import { revokeSession } from "../../db/sessions";
import type { Deps } from "../../deps";
import { sha256Base64Url } from "../../encoding";
import { retryAfterAnswer } from "../core/epochs";
import { hashRefreshToken, newRefreshToken } from "../core/refresh-tokens";
import { revokeSessions } from "../core/revocations";
import { accessUntil } from "../core/sign-in";
import { activeKeys } from "../core/signing-keys";
import { type ClaimSource, claimsFor } from "./claims";
import { OAuthRefusal } from "./errors";
import { audienceOf, normalizeResource, scopesOf } from "./policy";
import { signAppAccessToken, signIdToken } from "./tokens";

/**
 * The token endpoint's authorization_code grant (RFC 6749 4.1.3, PKCE RFC 7636 S256), and the answer
 * every grant shares. Knows nothing of HTTP.
 */

export interface TokenAnswer {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
}

const CODE_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const VERIFIER_FORMAT = /^[A-Za-z0-9._~-]{43,128}$/; // RFC 7636 4.1
const badCode = () =>
  new OAuthRefusal("invalid_grant", "The code is invalid, expired, used, or was not issued to this client for this redirect_uri and verifier");

const earlier = (a: Date, b: Date) => (a < b ? a : b);

/**
 * A refresh token only where one is wanted and allowed: the client may use the refresh_token grant,
 * and, for an OpenID request, the user granted offline_access (OpenID Connect Core 11).
 */
export const refreshAllowed = (client: Pick<OAuthClient, "grantTypes">, scope: string[]) =>
  client.grantTypes.includes("refresh_token") && (scope.includes("offline_access") || !scope.includes("openid"));

export interface Grant {
  id: string;
  expiresAt: Date;
  amr: string[];
  authTime: Date;
}

/** Signs the access token (and the ID token, for openid) for a grant of `client` to `user`. */
export async function grantTokens(
  deps: Deps,
  p: { client: OAuthClient; user: ClaimSource; grant: Grant; scope: string[]; resource: string | null; nonce?: string | null; now: Date; idToken: boolean },
) {
  const ring = await activeKeys(deps);
  const expiresAt = earlier(accessUntil(deps.config, p.now), p.grant.expiresAt);
  const access = await signAppAccessToken(deps.config, ring, {
    sub: p.user.id,
    clientId: p.client.id,
    scope: p.scope,
    audience: audienceOf(deps.config, p.resource),
    sessionId: p.grant.id,
    authTime: p.grant.authTime,
    amr: p.grant.amr,
    now: p.now,
    expiresAt,
  });
  const answer: TokenAnswer = { access_token: access.token, token_type: "Bearer", expires_in: access.expiresIn, scope: p.scope.join(" ") };
  if (p.idToken && p.scope.includes("openid")) {
    answer.id_token = await signIdToken(deps.config, ring, {
      sub: p.user.id,
      clientId: p.client.id,
      nonce: p.nonce ?? null,
      authTime: p.grant.authTime,
      amr: p.grant.amr,
      accessToken: access.token,
      claims: claimsFor(p.scope, p.user),
      now: p.now,
      expiresAt: accessUntil(deps.config, p.now),
    });
  }
  return answer;
}

export interface CodeParams {
  code: string;
  redirect_uri?: string;
  code_verifier?: string;
  resource?: string[];
}

/**
 * Exchanges a code once, in one round trip (db/oauth-grants.ts): the code is used only by the client it
 * was issued to, with the redirect_uri and the PKCE verifier of its request. A second use of a code
 * ends the grant its first use opened (RFC 9700 4.2.4): the tokens it gave die with it.
 */
export async function exchangeCode(deps: Deps, client: OAuthClient, p: CodeParams): Promise<TokenAnswer> {
  const { config, db } = deps;
  if (!client.grantTypes.includes("authorization_code")) throw new OAuthRefusal("unauthorized_client", "This client may not use the authorization_code grant");
  if (!p.code_verifier) throw new OAuthRefusal("invalid_request", "code_verifier is required (PKCE)");
  if (!VERIFIER_FORMAT.test(p.code_verifier)) throw new OAuthRefusal("invalid_grant", "code_verifier must be 43-128 unreserved characters");
  // OAuth 2.1 4.1.3: required when the authorization request had it, which it must have unless the
  // client has exactly one (auth/oauth-server/authorize.ts): then that one is meant.
  const redirectUri = p.redirect_uri ?? (client.redirectUris.length === 1 ? client.redirectUris[0] : undefined);
  if (!redirectUri) throw new OAuthRefusal("invalid_request", "redirect_uri is required");
  if (!CODE_FORMAT.test(p.code)) throw badCode();
  const now = new Date();
  const codeHash = await sha256Base64Url(p.code);
  const grantId = crypto.randomUUID();
  const refreshToken = newRefreshToken(); // handed out only if the grant allows one (below)
  const allowsRefresh = client.grantTypes.includes("refresh_token");
  const x = {
    codeHash,
    clientId: client.id,
    redirectUri,
    challenge: await sha256Base64Url(p.code_verifier),
    grantId,
    refreshTokenHash: await hashRefreshToken(refreshToken),
    userAgent: deps.userAgent?.slice(0, 256) ?? null,
    now,
    accessExpiresAt: accessUntil(config, now),
    // A grant without refresh ends with its access token; with one, it lives as a session does.
    expiresAt: allowsRefresh ? new Date(now.getTime() + config.REFRESH_TOKEN_TTL * 1000) : accessUntil(config, now),
    requireVerified: config.REQUIRE_VERIFIED_EMAIL === "on",
  };
  const r = await batch(db, {
    ...exchangeCodeStatements(db, x),
    audited: auditRowIfSession(deps, "oauth_grant_issued", { session_id: grantId, client_id: client.id }),
  });
  const request = r.code[0];
  const grant = r.grant[0];
  const user = r.owner[0];
  if (!request) return codeNotUsable(deps, codeHash);
  if (!grant || !user) throw badCode(); // the account was disabled, or the approving session ended, since the approval
  const scope = scopesOf(request.scope);
  // RFC 8707 2.2: a resource named here must be the one granted.
  if (p.resource?.length && (p.resource.length > 1 || normalizeResource(p.resource[0]!) !== request.resource)) {
    await endGrant(deps, grantId, "resource_mismatch");
    throw new OAuthRefusal("invalid_target", "The resource must be the one the authorization request named");
  }
  logEvent(deps, "oauth_grant_issued", { user_id: user.id, session_id: grantId, client_id: client.id });
  const answer = await grantTokens(deps, { client, user, grant, scope, resource: request.resource, nonce: request.nonce, now, idToken: true });
  if (refreshAllowed(client, scope)) answer.refresh_token = refreshToken;
  return answer;
}

/** Why a code could not be used; a code used before ends the grant its first use opened. */
async function codeNotUsable(deps: Deps, codeHash: string): Promise<never> {
  const used = await usedCode(deps.db, codeHash);
  if (used?.usedAt && used.grantId) {
    await audit(deps, "oauth_code_reused", { user_id: used.userId, session_id: used.grantId, client_id: used.clientId });
    await endGrant(deps, used.grantId, "code_reused");
  }
  throw badCode();
}

/** Revokes one grant in D1, then in KV (retried after the answer if KV fails: a refusal is answered either way). */
export async function endGrant(deps: Deps, grantId: string, reason: string) {
  const revoked = await revokeSession(deps.db, { id: grantId }, new Date());
  if (revoked.length === 0) return;
  await audit(deps, "oauth_grant_revoked", { user_id: revoked[0]!.userId, session_id: grantId, reason });
  try {
    await revokeSessions(deps.kv, revoked);
  } catch {
    retryAfterAnswer(deps, () => revokeSessions(deps.kv, revoked));
  }
}
