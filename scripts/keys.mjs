// Production secrets.
//   npm run -s keygen         {"JWT_WRAPPING_KEY": ..., "PASSWORD_PEPPER": ..., "MFA_ENCRYPTION_KEY": ..., "OAUTH_CLIENT_SECRETS": "{}"}
//                             for `wrangler deploy --secrets-file` (put the providers' secrets in the last one)
//   npm run -s keygen wrap    one new JWT_WRAPPING_KEY (seals the signing key ring; SIGNING_KEYS = "rotating")
//   npm run -s keygen jwk     one new signing key (a private JWK with a kid) for JWT_PRIVATE_KEY (SIGNING_KEYS = "secret")
//   npm run -s keygen pepper  one new pepper (32 random bytes: the floor config.ts sets; rotation: docs/crypto.md)
//   npm run -s keygen mfa     one new MFA_ENCRYPTION_KEY (seals TOTP secrets; rotate it through
//                             MFA_ENCRYPTION_KEY_PREVIOUS, docs/crypto.md: a plain replacement voids every TOTP setup)
//   npm run -s keygen registration  one initial access token for dynamic client registration, and the
//                             SHA-256 that goes in OAUTH_REGISTRATION_TOKENS (the token goes to the app's developer)
//   npm run -s keygen client-secret  a secret for a confidential client declared in OAUTH_CLIENTS, and the
//                             SHA-256 that goes in its entry's secret_sha256 (the secret goes to the app only)
import { webcrypto } from "node:crypto";
import { pathToFileURL } from "node:url";

export async function newSigningJwk() {
  const { privateKey } = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const jwk = await webcrypto.subtle.exportKey("jwk", privateKey);
  const kid = `key-${new Date().toISOString().slice(0, 10)}-${webcrypto.randomUUID().slice(0, 8)}`;
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d, kid, alg: "ES256" };
}

export const newPepper = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(32))).toString("base64url");
export const newMfaKey = newPepper; // 32 random bytes, base64url: an AES-256 key
export const newWrappingKey = newPepper; // the same: the key the ring's private keys are sealed with

/** SHA-256, base64url: how the Worker keeps a token or client secret it is given (src/encoding.ts sha256Base64Url). */
const sha256 = async (text) => Buffer.from(await webcrypto.subtle.digest("SHA-256", new TextEncoder().encode(text))).toString("base64url");

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const what = process.argv[2];
  if (what === "jwk") process.stdout.write(JSON.stringify(await newSigningJwk()));
  else if (what === "pepper") process.stdout.write(newPepper());
  else if (what === "mfa") process.stdout.write(newMfaKey());
  else if (what === "wrap") process.stdout.write(newWrappingKey());
  else if (what === "registration") {
    const token = newPepper();
    process.stdout.write(`${JSON.stringify({ token, OAUTH_REGISTRATION_TOKENS: await sha256(token) }, null, 2)}\n`);
  } else if (what === "client-secret") {
    const secret = newPepper(); // 256 random bits, as the admin API's secrets
    process.stdout.write(`${JSON.stringify({ client_secret: secret, secret_sha256: await sha256(secret) }, null, 2)}\n`);
  } else
    process.stdout.write(
      `${JSON.stringify({ JWT_WRAPPING_KEY: newWrappingKey(), PASSWORD_PEPPER: newPepper(), MFA_ENCRYPTION_KEY: newMfaKey(), OAUTH_CLIENT_SECRETS: "{}" }, null, 2)}\n`,
    );
}
