import { jwtVerify, SignJWT } from "jose";
import type { Config } from "../../config";
import { toBase64Url } from "../../encoding";
import { signClientToken } from "../core/service-tokens";
import { ACCESS_TOKEN_TYPE, ALG, type KeyRing } from "../core/tokens";

/**
 * The tokens an app gets (docs/oauth-server.md): access tokens of the RFC 9068 profile, for the
 * resource granted, and OpenID Connect ID tokens. Signed by the same key ring as the API's own, so a
 * resource server needs the JWKS alone. With auth/core/tokens.ts, the only modules importing jose.
 */

export interface AppTokenInput {
  sub: string; // the user; the client itself for client_credentials
  clientId: string;
  scope: string[];
  audience: string; // auth/oauth-server/policy.ts audienceOf
  sessionId?: string; // the grant (none for client_credentials)
  authTime?: Date;
  amr?: string[];
  now: Date;
  expiresAt: Date;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

export function signAppAccessToken(config: Config, ring: KeyRing, input: AppTokenInput): Promise<{ token: string; expiresIn: number }> {
  const claims = {
    client_id: input.clientId,
    scope: input.scope.join(" "),
    ...(input.sessionId ? { sid: input.sessionId } : {}),
    ...(input.authTime ? { auth_time: seconds(input.authTime) } : {}),
    ...(input.amr ? { amr: input.amr } : {}),
  };
  return signClientToken(config, ring, { sub: input.sub, audience: input.audience, claims, now: input.now, expiresAt: input.expiresAt });
}

export interface IdTokenInput {
  sub: string;
  clientId: string;
  nonce: string | null;
  authTime: Date;
  amr: string[];
  accessToken: string;
  claims: Record<string, unknown>; // by scope (auth/oauth-server/claims.ts)
  now: Date;
  expiresAt: Date;
}

/** at_hash (OpenID Connect Core 3.1.3.6): the left half of the access token's SHA-256, base64url. */
async function atHash(accessToken: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
  return toBase64Url(digest.slice(0, digest.length / 2));
}

export async function signIdToken(config: Config, ring: KeyRing, input: IdTokenInput): Promise<string> {
  return new SignJWT({
    ...input.claims,
    azp: input.clientId,
    auth_time: seconds(input.authTime),
    amr: input.amr,
    at_hash: await atHash(input.accessToken),
    ...(input.nonce ? { nonce: input.nonce } : {}),
  })
    .setProtectedHeader({ alg: ALG, kid: ring.kid, typ: "JWT" })
    .setIssuer(config.ISSUER)
    .setAudience(input.clientId)
    .setSubject(input.sub)
    .setIssuedAt(seconds(input.now))
    .setExpirationTime(seconds(input.expiresAt))
    .sign(ring.signingKey);
}

export interface AppClaims {
  sub: string;
  client_id: string;
  scope: string[];
  sid?: string;
  exp: number;
}

/**
 * An app's access token, verified for `audience` (this issuer, at /oauth2/userinfo) or for any
 * audience (null: revocation, where only our signature and the client matter). Null when it is not one.
 */
export async function verifyAppAccessToken(config: Config, ring: KeyRing, token: string, audience: string | null): Promise<AppClaims | null> {
  try {
    const { payload } = await jwtVerify(token, ring.resolve, {
      algorithms: [ALG],
      typ: ACCESS_TOKEN_TYPE,
      issuer: config.ISSUER,
      ...(audience ? { audience } : {}),
      requiredClaims: ["sub", "jti", "iat", "exp", "client_id", "scope"],
    });
    const { sub, client_id, scope, sid, exp } = payload;
    if (typeof client_id !== "string" || typeof scope !== "string" || (sid !== undefined && typeof sid !== "string")) return null;
    return { sub: sub!, client_id, scope: scope.split(" ").filter(Boolean), sid: sid as string | undefined, exp: exp! };
  } catch {
    return null;
  }
}
