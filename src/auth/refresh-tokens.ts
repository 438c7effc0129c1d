import { randomBytes, sha256Base64Url, toBase64Url } from "../encoding";

/**
 * Refresh tokens: 256 random bits (base64url) at login; each rotation's successor is an HMAC of the
 * token it replaces. A client that lost the answer to /refresh and retries with the same token can
 * then be given the same successor again, recomputed, without it ever being stored in the clear.
 * Only SHA-256 hashes are stored: the tokens are high-entropy, so a fast hash suffices.
 */

// What these functions make; anything else is not worth a D1 query.
export const REFRESH_TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;

export function newRefreshToken(): string {
  return toBase64Url(randomBytes(32));
}

export const hashRefreshToken = sha256Base64Url;

// The successor key is derived (HKDF, its own label) from the signing-key secret, so there is no
// extra secret to deploy; rotating JWT_PRIVATE_KEY only breaks a retry that straddles the rotation.
const keys = new Map<string, Promise<CryptoKey>>();
const encoder = new TextEncoder();

function successorKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle
      .importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"])
      .then((master) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: encoder.encode("edge-auth-api refresh successor v1") },
          master,
          { name: "HMAC", hash: "SHA-256", length: 256 },
          false,
          ["sign"],
        ),
      );
    keys.set(secret, key);
  }
  return key;
}

/** The refresh token that replaces `token` at rotation: the same every time it is asked for. */
export async function successorOf(secret: string, token: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await successorKey(secret), encoder.encode(token));
  return toBase64Url(new Uint8Array(mac));
}
