import type { Context } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { every } from "hono/combine";
import { createMiddleware } from "hono/factory";
import { isRevoked } from "../auth/core/revocations";
import { activeKeys } from "../auth/core/signing-keys";
import { type AccessClaims, verifyAccessToken } from "../auth/core/tokens";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ApiError, errorBody } from "../errors";
import { log } from "../log";
import { keyStores } from "../stores";
import { membersOnly } from "./members-only";

// Our tokens are ~600 characters; anything far larger is junk and not worth parsing.
const MAX_TOKEN_LENGTH = 4096;
const REALM = "edge-auth-api";
const challenge = (error?: string, description?: string) => `Bearer realm="${REALM}"${error ? `, error="${error}", error_description="${description}"` : ""}`;

/**
 * Bearer access-token check (RFC 6750 challenges come from Hono's bearerAuth).
 * Verifies the JWT locally, then one KV bulk read for revocation: no D1 on this path. Sets c.var.auth.
 * A guest's token is then refused on the members' route groups (./members-only.ts), and an
 * enrolment-only token (403 mfa_enrolment_required) unless `duringEnrolment`: the routes that enrol a
 * second factor, GET /me and POST /logout. Each is the one place its rule lives.
 */
export function requireAuth(opts: { duringEnrolment?: boolean } = {}) {
  return opts.duringEnrolment ? every(bearerToken(), membersOnly) : every(bearerToken(), membersOnly, enrolled);
}

// REQUIRE_MFA's one gate (auth/core/mfa-policy.ts): a token that may only enrol a second factor is
// refused by every route that does not declare `duringEnrolment`, so a new route is closed to it.
const enrolled = createMiddleware<AppEnv>(async function enrolled(c, next) {
  if (c.get("auth")?.mfa_enrolment) throw new ApiError("mfa_enrolment_required");
  await next();
});

function bearerToken() {
  return bearerAuth<AppEnv>({
    realm: REALM,
    noAuthenticationHeader: {
      message: errorBody("invalid_token", "Missing bearer token"),
      wwwAuthenticateHeader: challenge(),
    },
    invalidAuthenticationHeader: {
      message: errorBody("invalid_request", "Authorization must be: Bearer <access token>"),
      wwwAuthenticateHeader: challenge("invalid_request", "malformed Authorization header"),
    },
    invalidToken: {
      message: errorBody("invalid_token", "Invalid or expired access token"),
      wwwAuthenticateHeader: challenge("invalid_token", "the access token is invalid, expired or revoked"),
    },
    verifyToken: async (token, c) => {
      // Why a token was refused goes to the log at debug level, never into the answer.
      const refused = (reason: string) => log("token_refused", { request_id: c.get("requestId"), reason }, "debug");
      if (token.length > MAX_TOKEN_LENGTH) {
        refused("too_long");
        return false;
      }
      const claims = await verifyAccessToken(getConfig(c.env), await activeKeys(keyStores(c)), token, refused);
      if (!claims) return false;
      if (await isRevoked(c.env.REVOKED, claims)) {
        refused("revoked");
        return false;
      }
      c.set("auth", claims);
      return true;
    },
  });
}

/**
 * The claims of a well-signed, unexpired Bearer token on the request, or null: for a route that
 * also works without one (a cookie logout). Not checked against KV: revoking again is harmless.
 */
export async function bearerClaims(c: Context<AppEnv>): Promise<AccessClaims | null> {
  const token = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (!token || token.length > MAX_TOKEN_LENGTH) return null;
  return verifyAccessToken(getConfig(c.env), await activeKeys(keyStores(c)), token);
}

/** requireAuth() and then 403 unless the verified token carries the role: it cannot run without authentication. */
export function requireRole(role: string) {
  const hasRole = createMiddleware<AppEnv>(async function hasRole(c, next) {
    if (!c.get("auth")?.roles.includes(role)) throw new ApiError("forbidden", `Requires the ${role} role`);
    await next();
  });
  return every(requireAuth(), hasRole);
}
