import { SignJWT } from "jose";
import type { Config } from "../../config";
import { ACCESS_TOKEN_TYPE, ALG, type KeyRing } from "./tokens";

/**
 * Access tokens for a service that holds an API key (auth/api-keys/exchange.ts, docs/api-keys.md):
 * the same RFC 9068 profile, ring and audience as the API's own tokens, so a backend verifies one
 * kind of token with the JWKS alone. `client_id` (the key's id) marks it as a machine's: the API's
 * own routes refuse it (auth/core/tokens.ts verifyAccessToken), and it carries no session (`sid`).
 * With tokens.ts and auth/oauth-server/tokens.ts, the only modules that sign with jose.
 */

export interface ServiceTokenInput {
  /** The user id, or the organization id for an organization's key. */
  sub: string;
  keyId: string;
  ownerType: "user" | "organization";
  scope: string[];
  org?: { id: string; slug: string };
  now: Date;
  expiresAt: Date;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * An RFC 9068 access token for a client (an app's, auth/oauth-server/tokens.ts; a key's, below):
 * `claims` beside the registered ones, signed by the ring's current key. Its `exp` is `expiresAt`, rounded down.
 */
export async function signClientToken(
  config: Config,
  ring: KeyRing,
  t: { sub: string; audience: string; claims: Record<string, unknown>; now: Date; expiresAt: Date },
): Promise<{ token: string; expiresIn: number }> {
  const now = seconds(t.now);
  const exp = seconds(t.expiresAt);
  const token = await new SignJWT(t.claims)
    .setProtectedHeader({ alg: ALG, kid: ring.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(config.ISSUER)
    .setAudience(t.audience)
    .setSubject(t.sub)
    .setJti(crypto.randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(ring.signingKey);
  return { token, expiresIn: exp - now };
}

export function signServiceToken(config: Config, ring: KeyRing, input: ServiceTokenInput): Promise<{ token: string; expiresIn: number }> {
  const claims = {
    client_id: input.keyId,
    key_id: input.keyId,
    owner_type: input.ownerType,
    scope: input.scope.join(" "),
    ...(input.org && { org_id: input.org.id, org_slug: input.org.slug }),
  };
  return signClientToken(config, ring, { sub: input.sub, audience: config.AUDIENCE, claims, now: input.now, expiresAt: input.expiresAt });
}
