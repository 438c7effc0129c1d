// Makes an ES256 signing key as a private JWK with a kid (the JWT_PRIVATE_KEY secret).
import { webcrypto } from "node:crypto";
import { pathToFileURL } from "node:url";

export async function newSigningJwk() {
  const { privateKey } = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const jwk = await webcrypto.subtle.exportKey("jwk", privateKey);
  const kid = `key-${new Date().toISOString().slice(0, 10)}-${webcrypto.randomUUID().slice(0, 8)}`;
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d, kid, alg: "ES256" };
}

export const newPepper = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(32))).toString("base64url");

// `npm run keygen` prints a fresh production key to pipe into `wrangler secret put JWT_PRIVATE_KEY`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const what = process.argv[2] ?? "jwk";
  process.stdout.write(what === "pepper" ? newPepper() : JSON.stringify(await newSigningJwk()));
}
