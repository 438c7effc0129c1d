import { ConfigError } from "../config";
import { fromBase64Url, toBase64Url } from "../encoding";

/**
 * Encryption at rest for second-factor secrets, under MFA_ENCRYPTION_KEY, a secret of the Worker
 * (never in D1 beside the data). Each use gets its own key derived from it (HKDF, one label each):
 * AES-256-GCM for sealing, HMAC for derived values. The user id is the associated data of a sealed
 * value, so one copied into another user's row does not open. Format: "v1.<iv>.<ciphertext>".
 */

const SEAL = "edge-auth-api seal v1";
const keys = new Map<string, Promise<CryptoKey>>();

function subkey(secret: string | undefined, label: string): Promise<CryptoKey> {
  // A deployment without the key still serves everything but second factors.
  if (!secret) return Promise.reject(new ConfigError(["MFA_ENCRYPTION_KEY: is required for second factors (npm run -s keygen mfa)"]));
  const name = `${label}\u0000${secret}`;
  let key = keys.get(name);
  if (!key) {
    const algorithm = label === SEAL ? { name: "AES-GCM", length: 256 } : { name: "HMAC", hash: "SHA-256", length: 256 };
    const usages: ("encrypt" | "decrypt" | "sign")[] = label === SEAL ? ["encrypt", "decrypt"] : ["sign"];
    key = crypto.subtle
      .importKey("raw", fromBase64Url(secret)!, "HKDF", false, ["deriveKey"]) // its format is checked by config.ts
      .then((master) => crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: new TextEncoder().encode(label) }, master, algorithm, false, usages));
    keys.set(name, key);
  }
  return key;
}

export async function seal(secret: string | undefined, userId: string, plain: Uint8Array): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new TextEncoder().encode(userId);
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: data }, await subkey(secret, SEAL), plain);
  return `v1.${toBase64Url(iv)}.${toBase64Url(new Uint8Array(sealed))}`;
}

/** Throws when the value was not sealed for this user under this key. */
export async function open(secret: string | undefined, userId: string, sealed: string): Promise<Uint8Array> {
  const [version, iv, body] = sealed.split(".");
  const ivBytes = iv ? fromBase64Url(iv) : null;
  const bodyBytes = body ? fromBase64Url(body) : null;
  if (version !== "v1" || !ivBytes || !bodyBytes) throw new Error("not a sealed value");
  const data = new TextEncoder().encode(userId);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: ivBytes, additionalData: data }, await subkey(secret, SEAL), bodyBytes));
}

/**
 * HMAC-SHA256 of `data` under a key derived with `label`: values that must come out the same again
 * (recovery codes shown again to a retry) without being stored in the clear.
 */
export async function derive(secret: string | undefined, label: string, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await subkey(secret, label), new TextEncoder().encode(data)));
}
