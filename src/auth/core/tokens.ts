import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, importPKCS8, type JSONWebKeySet, type JWK, jwtVerify, SignJWT } from "jose";
import { type Config, ConfigError } from "../../config";
import { permissionsOf } from "../../config-orgs";

/**
 * Access tokens: ES256 JWTs (RFC 9068 profile), and the one JWT this API signs for a provider (Apple
 * client secret). The only module that imports jose. Which keys sign and verify is decided by
 * auth/core/signing-keys.ts (the rotating ring, or JWT_PRIVATE_KEY); this module only uses them.
 */

export const ALG = "ES256";
export const ACCESS_TOKEN_TYPE = "at+jwt";

export interface AccessClaims {
  sub: string;
  username: string | null; // null: the account has none (NO_USERNAME)
  roles: string[];
  sid: string;
  epoch: number; // the user's session epoch when issued (auth/core/revocations.ts usr: entries)
  auth_time?: number; // when the session's sign-in was proved (absent in tokens from before it was carried)
  amr?: string[]; // how (RFC 8176 values; auth/core/ways-in.ts amrOf)
  org?: OrgClaims; // the session's active organization (docs/organizations.md)
  mfa_enrolment?: true; // REQUIRE_MFA: this session may only enrol a second factor (auth/core/mfa-policy.ts)
  guest?: true; // a guest's account (docs/guests.md): absent for a member
  jti: string;
  iat: number;
  exp: number;
}

/** The active organization as a token carries it: `org_id`, `org_slug`, `org_role`, `org_permissions`. */
export interface OrgClaims {
  id: string;
  slug: string;
  role: string;
  permissions: string[];
}

/** The keys in use: one signs, every published one verifies. */
export interface KeyRing {
  kid: string;
  signingKey: CryptoKey;
  jwks: JSONWebKeySet;
  resolve: ReturnType<typeof createLocalJWKSet>;
}

// Importing keys is comparatively expensive; do it once per isolate and set of keys.
const rings = new Map<string, Promise<KeyRing>>();

/** The public half of a JWK, as the JWKS publishes it. */
export function publicHalf(jwk: JWK): JWK {
  const { kty, crv, x, y, kid } = jwk;
  return { kty, crv, x, y, kid, alg: ALG, use: "sig" };
}

const isP256 = (k: unknown): k is JWK => {
  const j = k as JWK | null;
  return typeof j === "object" && j !== null && j.kty === "EC" && j.crv === "P-256" && !!j.kid && !!j.x && !!j.y;
};

/**
 * The ring for a private signing JWK and the public JWKs that verify (the signing key's own among
 * them), cached under `id`. `problem` turns a key that does not import into the caller's error.
 */
export function keyRing(id: string, signing: JWK, verifying: JWK[], problem: (what: string) => Error): Promise<KeyRing> {
  let ring = rings.get(id);
  if (!ring) {
    ring = (async () => {
      try {
        const signingKey = (await importJWK({ ...signing, alg: ALG }, ALG)) as CryptoKey;
        const jwks = { keys: verifying.map(publicHalf) };
        // Every public half must import too, or verification would fail on the first token it signed.
        await Promise.all(jwks.keys.map((k) => importJWK(k, ALG)));
        return { kid: signing.kid!, signingKey, jwks, resolve: createLocalJWKSet(jwks) };
      } catch {
        throw problem("holds a key that does not import as P-256");
      }
    })();
    ring.catch(() => rings.delete(id));
    // A rotating ring makes a new set now and then; an isolate keeps the few latest.
    if (rings.size >= 16) rings.delete(rings.keys().next().value!);
    rings.set(id, ring);
  }
  return ring;
}

/** The private JWKs in JWT_PRIVATE_KEY (one JWK, or a set whose first key signs), checked. */
export function privateKeysOf(secret: string): JWK[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    throw badKey("is not JSON");
  }
  const set = parsed as JSONWebKeySet | null;
  const keys: unknown[] = Array.isArray(set?.keys) ? set.keys : [parsed];
  const first = keys[0];
  if (!isP256(first) || !first.d) throw badKey("must start with a private P-256 JWK that has a kid");
  if (!keys.every(isP256)) throw badKey("holds a key that is not a P-256 JWK with a kid");
  return keys as JWK[];
}

// A broken key is a deployment mistake: report it as the config error that names the secret.
const badKey = (problem: string) => new ConfigError([`JWT_PRIVATE_KEY: ${problem}`]);

/** SIGNING_KEYS=secret: JWT_PRIVATE_KEY's first key signs; every key in it verifies and is published. */
export function secretKeyRing(secret: string): Promise<KeyRing> {
  // Every request asks: parse and check the secret only when this isolate has no ring for it yet.
  const cached = rings.get(`secret:${secret}`);
  if (cached) return cached;
  let keys: JWK[];
  try {
    keys = privateKeysOf(secret);
  } catch (err) {
    return Promise.reject(err);
  }
  return keyRing(`secret:${secret}`, keys[0]!, keys, badKey);
}

export interface SignInput {
  userId: string;
  username: string;
  roles: string[];
  sessionId: string;
  epoch: number;
  emailVerified: boolean;
  authTime: Date; // the session's sign-in, and how it was proved
  amr: string[];
  mfaEnrolment?: boolean; // REQUIRE_MFA and no second factor yet: the token only enrols one
  org?: { id: string; slug: string; role: string }; // its permissions come from ORG_ROLES when signed
  guest?: boolean; // the account is a guest's (auth/guests/): `guest: true`, read again at every refresh
  now: Date; // the request's one clock reading
  expiresAt: Date; // as recorded in the session row (never past the session's end); exp rounds down
}

export async function signAccessToken(config: Config, ring: KeyRing, input: SignInput): Promise<{ token: string; jti: string; expiresIn: number }> {
  const jti = crypto.randomUUID();
  const now = Math.floor(input.now.getTime() / 1000);
  const exp = Math.floor(input.expiresAt.getTime() / 1000);
  const claims = {
    // An account without a username (NO_USERNAME: auth/core/ways-in.ts) carries no such claim.
    ...(input.username && { username: input.username }),
    roles: input.roles,
    sid: input.sessionId,
    epoch: input.epoch,
    email_verified: input.emailVerified,
    auth_time: Math.floor(input.authTime.getTime() / 1000),
    amr: input.amr,
    ...(input.mfaEnrolment && { mfa_enrolment: true }),
    ...(input.guest && { guest: true }),
    ...(input.org && {
      org_id: input.org.id,
      org_slug: input.org.slug,
      org_role: input.org.role,
      org_permissions: permissionsOf(config.ORG_ROLES, input.org.role),
    }),
  };
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: ALG, kid: ring.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(config.ISSUER)
    .setAudience(config.AUDIENCE)
    .setSubject(input.userId)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(ring.signingKey);
  return { token, jti, expiresIn: exp - now };
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/** The organization claims: all four or none (undefined); false when they are malformed. */
function orgOf(p: Record<string, unknown>): OrgClaims | undefined | false {
  const { org_id: id, org_slug: slug, org_role: role, org_permissions: permissions } = p;
  if (id === undefined && slug === undefined && role === undefined && permissions === undefined) return undefined;
  if (typeof id !== "string" || typeof slug !== "string" || typeof role !== "string" || !isStringArray(permissions)) return false;
  return { id, slug, role, permissions };
}

/** Why a token was refused, for the server's log only (never the answer: RFC 8725). */
function refusal(err: unknown): string {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case "ERR_JWT_EXPIRED":
      return "expired";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "bad_signature";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return `claim_${e.claim ?? "invalid"}`; // iss, aud, nbf, iat, a required claim...
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return "unknown_key_or_alg";
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return "malformed";
    default:
      return e.code ?? "invalid";
  }
}

/**
 * Verifies signature, algorithm, typ, issuer, audience and times. Returns null for any token
 * that is not a valid access token from us; the reason goes to `onRefused` only (for the log).
 */
export async function verifyAccessToken(config: Config, ring: KeyRing, token: string, onRefused?: (reason: string) => void): Promise<AccessClaims | null> {
  try {
    const { payload } = await jwtVerify(token, ring.resolve, {
      algorithms: [ALG],
      typ: ACCESS_TOKEN_TYPE,
      issuer: config.ISSUER,
      audience: config.AUDIENCE,
      requiredClaims: ["sub", "jti", "iat", "exp", "sid"],
    });
    // An app's token (auth/oauth-server/tokens.ts) never acts on the account, whatever its audience.
    if (payload.client_id !== undefined) {
      onRefused?.("app_token");
      return null;
    }
    const { sub, jti, iat, exp, sid, username, roles, epoch = 0, auth_time, amr, mfa_enrolment, guest } = payload;
    const org = orgOf(payload);
    // Tokens from before epochs existed carry none: they belong to epoch 0, where every user started.
    const badAssurance = (auth_time !== undefined && !Number.isSafeInteger(auth_time)) || (amr !== undefined && !isStringArray(amr));
    if (
      typeof sid !== "string" ||
      (username !== undefined && typeof username !== "string") ||
      !isStringArray(roles) ||
      !Number.isSafeInteger(epoch) ||
      (epoch as number) < 0 ||
      badAssurance ||
      (mfa_enrolment !== undefined && mfa_enrolment !== true) ||
      (guest !== undefined && guest !== true) ||
      org === false
    ) {
      onRefused?.("claim_types");
      return null;
    }
    return {
      sub: sub!,
      jti: jti!,
      iat: iat!,
      exp: exp!,
      sid,
      username: (username as string | undefined) ?? null,
      roles,
      epoch: epoch as number,
      auth_time: auth_time as number | undefined,
      amr: amr as string[] | undefined,
      ...(mfa_enrolment === true && { mfa_enrolment }),
      ...(org && { org }),
      ...(guest === true && { guest: true as const }),
    };
  } catch (err) {
    onRefused?.(refusal(err));
    return null;
  }
}

/**
 * Sign in with Apple's client secret: a short ES256 JWT signed with the team's key (its .p8, the
 * provider's entry in OAUTH_CLIENT_SECRETS), minted per code exchange so no long-lived one is kept.
 */
export async function appleClientSecret(p: { teamId: string; keyId: string; clientId: string; pkcs8: string }, now: Date): Promise<string> {
  const key = await importPKCS8(p.pkcs8, ALG);
  const iat = Math.floor(now.getTime() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: ALG, kid: p.keyId })
    .setIssuer(p.teamId)
    .setSubject(p.clientId)
    .setAudience("https://appleid.apple.com")
    .setIssuedAt(iat)
    .setExpirationTime(iat + 300)
    .sign(key);
}

/** A new private signing JWK (for the rotating ring), named `kid`. */
export async function newSigningJwk(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const { kty, crv, x, y, d } = await exportJWK(privateKey);
  return { kty, crv, x, y, d, kid, alg: ALG };
}
