import { SignJWT, createLocalJWKSet, importJWK, jwtVerify, type JSONWebKeySet, type JWK } from "jose";
import type { Config } from "../config";

/**
 * Access tokens: ES256 JWTs (RFC 9068 profile). The only module that imports jose.
 *
 * JWT_PRIVATE_KEY holds either one private JWK or a JWK set {"keys": [...]}. The first key signs;
 * every key verifies and is published in the JWKS, so a previous key can stay during rotation.
 */

export const ALG = "ES256";
export const ACCESS_TOKEN_TYPE = "at+jwt";

export interface AccessClaims {
  sub: string;
  username: string;
  roles: string[];
  sid: string;
  jti: string;
  iat: number;
  exp: number;
}

interface KeyRing {
  kid: string;
  signingKey: CryptoKey;
  jwks: JSONWebKeySet;
  resolve: ReturnType<typeof createLocalJWKSet>;
}

// Importing keys is comparatively expensive; do it once per isolate and secret value.
const rings = new Map<string, Promise<KeyRing>>();

function publicHalf(jwk: JWK): JWK {
  const { kty, crv, x, y, kid } = jwk;
  return { kty, crv, x, y, kid, alg: ALG, use: "sig" };
}

async function buildRing(secret: string): Promise<KeyRing> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    throw new Error("JWT_PRIVATE_KEY is not JSON");
  }
  const keys: JWK[] = Array.isArray((parsed as JSONWebKeySet)?.keys) ? (parsed as JSONWebKeySet).keys : [parsed as JWK];
  const first = keys[0];
  if (!first || first.kty !== "EC" || first.crv !== "P-256" || !first.d || !first.kid) {
    throw new Error("JWT_PRIVATE_KEY must start with a private P-256 JWK that has a kid");
  }
  for (const k of keys) {
    if (k.kty !== "EC" || k.crv !== "P-256" || !k.kid || !k.x || !k.y) throw new Error("JWT_PRIVATE_KEY holds a key that is not a P-256 JWK with a kid");
  }
  const signingKey = (await importJWK({ ...first, alg: ALG }, ALG)) as CryptoKey;
  const jwks = { keys: keys.map(publicHalf) };
  return { kid: first.kid, signingKey, jwks, resolve: createLocalJWKSet(jwks) };
}

function keyRing(secret: string): Promise<KeyRing> {
  let ring = rings.get(secret);
  if (!ring) {
    ring = buildRing(secret);
    ring.catch(() => rings.delete(secret));
    rings.set(secret, ring);
  }
  return ring;
}

export async function publicJwks(config: Config): Promise<JSONWebKeySet> {
  return (await keyRing(config.JWT_PRIVATE_KEY)).jwks;
}

export interface SignInput {
  userId: string;
  username: string;
  roles: string[];
  sessionId: string;
}

export async function signAccessToken(config: Config, input: SignInput): Promise<{ token: string; jti: string; expiresIn: number }> {
  const ring = await keyRing(config.JWT_PRIVATE_KEY);
  const jti = crypto.randomUUID();
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ username: input.username, roles: input.roles, sid: input.sessionId })
    .setProtectedHeader({ alg: ALG, kid: ring.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(config.ISSUER)
    .setAudience(config.AUDIENCE)
    .setSubject(input.userId)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + config.ACCESS_TOKEN_TTL)
    .sign(ring.signingKey);
  return { token, jti, expiresIn: config.ACCESS_TOKEN_TTL };
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/**
 * Verifies signature, algorithm, typ, issuer, audience and times. Returns null for any token
 * that is not a valid access token from us; the reason is not exposed (RFC 8725).
 */
export async function verifyAccessToken(config: Config, token: string): Promise<AccessClaims | null> {
  const ring = await keyRing(config.JWT_PRIVATE_KEY);
  try {
    const { payload } = await jwtVerify(token, ring.resolve, {
      algorithms: [ALG],
      typ: ACCESS_TOKEN_TYPE,
      issuer: config.ISSUER,
      audience: config.AUDIENCE,
      requiredClaims: ["sub", "jti", "iat", "exp", "sid"],
    });
    const { sub, jti, iat, exp, sid, username, roles } = payload;
    if (typeof sid !== "string" || typeof username !== "string" || !isStringArray(roles)) return null;
    return { sub: sub!, jti: jti!, iat: iat!, exp: exp!, sid, username, roles };
  } catch {
    return null;
  }
}
