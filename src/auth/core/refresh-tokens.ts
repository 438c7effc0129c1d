import type { Config } from "../../config";
import { randomBytes, sha256Base64Url, toBase64Url } from "../../encoding";
import { serverHmacKey } from "./hkdf";

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

// The successor key is derived (HKDF, its own label) from the signing keys' secret, so there is no
// extra secret to deploy: JWT_PRIVATE_KEY while it is set (also once SIGNING_KEYS is rotating, so the
// move to the ring changes nothing here), else JWT_WRAPPING_KEY. Replacing that secret only breaks a
// retry that straddles the change (a 401; the session stays).
const encoder = new TextEncoder();
const successorKey = (config: Config) => serverHmacKey(config, "edge-auth-api refresh successor v1");

/** The refresh token that replaces `token` at rotation: the same every time it is asked for. */
export async function successorOf(config: Config, token: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await successorKey(config), encoder.encode(token));
  return toBase64Url(new Uint8Array(mac));
}
