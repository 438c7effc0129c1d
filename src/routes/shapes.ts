import type { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Issued } from "../auth/core/sign-in";
import { usernameOf, type WayIn } from "../auth/core/ways-in";
import type { User } from "../db/schema";
import type { AppEnv } from "../env";
import { setRefreshCookie } from "../middleware/refresh-cookie";
import type { userSchema } from "../response-schemas";

/** The JSON shapes of the contract (docs/api.md, and /openapi.json), built from domain values. */

/** The user as the contract shows it: the response schema's own type. */
export type PublicUser = z.output<typeof userSchema>;

/** Never a hash or a secret: only these fields leave the server. */
export const publicUser = (u: User): PublicUser => ({
  id: u.id,
  username: usernameOf(u),
  email: u.email,
  email_verified: u.emailVerifiedAt !== null,
  roles: u.roles,
  created_at: u.createdAt.toISOString(),
});

/** Which factors the account has (GET /me, the admin's view): counts and flags, never a secret. */
export const factorsShape = (u: User, passkeys: number) => ({
  totp: u.totpEnabledAt !== null,
  recovery_codes_left: u.totpEnabledAt ? (u.recoveryCodes?.length ?? 0) : 0,
  passkeys,
});

/**
 * The token pair of an answer. In cookie mode the refresh token goes into the HttpOnly cookie and is
 * left out of the JSON body.
 */
export function tokenBody(c: Context<AppEnv>, issued: Issued, cookie: boolean) {
  if (cookie) setRefreshCookie(c, issued.refreshToken, issued.sessionExpiresAt);
  return {
    access_token: issued.accessToken,
    ...(cookie ? {} : { refresh_token: issued.refreshToken }),
    token_type: "Bearer" as const,
    expires_in: issued.expiresIn,
  };
}

export const sessionShape = (s: { id: string; createdAt: Date; lastUsedAt: Date; expiresAt: Date; userAgent: string | null }, currentId: string) => ({
  id: s.id,
  created_at: s.createdAt.toISOString(),
  last_used_at: s.lastUsedAt.toISOString(),
  expires_at: s.expiresAt.toISOString(),
  user_agent: s.userAgent,
  current: s.id === currentId,
});

/** One way in (GET /me/security): never a secret, a key or a hash. */
export function wayInShape(w: WayIn, currentSession: string) {
  const common = {
    kind: w.kind,
    added_at: w.addedAt?.toISOString() ?? null,
    added_by_session: w.addedBy,
    by_this_session: w.addedBy !== null && w.addedBy === currentSession,
  };
  switch (w.kind) {
    case "password":
      return common;
    case "email":
      return { ...common, address: w.address, verified: w.verified };
    case "totp":
      return { ...common, recovery_codes_left: w.recoveryCodesLeft };
    case "passkey":
      return { ...common, id: w.id, name: w.name, last_used_at: w.lastUsedAt?.toISOString() ?? null, backed_up: w.backedUp };
    case "identity":
      return { ...common, id: w.id, provider: w.provider, address: w.email ?? undefined, last_used_at: w.lastUsedAt?.toISOString() ?? null };
  }
}

/** The answer of a first step when TOTP is on (POST /login, POST /oauth/exchange): the challenge for POST /login/mfa. */
export const mfaChallengeBody = (challenge: { token: string; expiresIn: number }) => ({
  mfa_required: true as const,
  challenge: challenge.token,
  expires_in: challenge.expiresIn,
  methods: ["totp" as const, "recovery_code" as const],
});
