import { ConfigError } from "../../config";
import { fromBase64Url, toBase64Url } from "../../encoding";
import { derivedKey, keyId } from "./hkdf";

/**
 * Encryption at rest for second-factor secrets, under MFA_ENCRYPTION_KEY, a secret of the Worker
 * (never in D1 beside the data). Each use gets its own key derived from it (HKDF, one label each):
 * AES-256-GCM for sealing, HMAC for derived values. The user id is the associated data of a sealed
 * value, so one copied into another user's row does not open.
 *
 * Format: "v2.<key id>.<iv>.<ciphertext>", the key id naming the MFA key it was sealed under (keyId),
 * so during a rotation a value sealed under MFA_ENCRYPTION_KEY_PREVIOUS still opens, and the cron
 * re-seals it under the current key (auth/totp/reseal.ts). "v1.<iv>.<ciphertext>" predates key ids:
 * it opens with the current key, else the previous one (GCM refuses the wrong key).
 */

/** The MFA keys: the current one seals; both open, while values move to the current one. */
export interface MfaKeys {
  MFA_ENCRYPTION_KEY?: string;
  MFA_ENCRYPTION_KEY_PREVIOUS?: string;
}

const SEAL = "edge-auth-api seal v1";

function subkey(secret: string | undefined, label: string): Promise<CryptoKey> {
  // A deployment without the key still serves everything but second factors.
  if (!secret) return Promise.reject(new ConfigError(["MFA_ENCRYPTION_KEY: is required for second factors (npm run -s keygen mfa)"]));
  const seals = label === SEAL;
  // Its format (32 bytes of base64url) is checked by config.ts.
  return derivedKey(
    fromBase64Url(secret)!,
    label,
    seals ? { name: "AES-GCM", length: 256 } : { name: "HMAC", hash: "SHA-256", length: 256 },
    seals ? ["encrypt", "decrypt"] : ["sign"],
  );
}

/** AES-GCM under `key`, bound to `owner` (associated data): "v1.<iv>.<ciphertext>". */
export async function sealWith(key: CryptoKey, owner: string, plain: Uint8Array): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new TextEncoder().encode(owner);
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: data }, key, plain);
  return `v1.${toBase64Url(iv)}.${toBase64Url(new Uint8Array(sealed))}`;
}

/** Throws when the value was not sealed for `owner` under `key`. */
export async function openWith(key: CryptoKey, owner: string, sealed: string): Promise<Uint8Array> {
  const [version, iv, body] = sealed.split(".");
  const ivBytes = iv ? fromBase64Url(iv) : null;
  const bodyBytes = body ? fromBase64Url(body) : null;
  if (version !== "v1" || !ivBytes || !bodyBytes) throw new Error("not a sealed value");
  const data = new TextEncoder().encode(owner);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: ivBytes, additionalData: data }, key, bodyBytes));
}

/** Seals `plain` for `userId` under the current key: "v2.<key id>.<iv>.<ciphertext>". */
export async function seal(secret: string | undefined, userId: string, plain: Uint8Array): Promise<string> {
  const sealed = await sealWith(await subkey(secret, SEAL), userId, plain);
  return `v2.${await keyId(secret!)}.${sealed.slice("v1.".length)}`;
}

/** Opens a value sealed for `userId` under either key (v2 names it; v1 tries both); throws when it does not open. */
export async function open(keys: MfaKeys, userId: string, sealed: string): Promise<Uint8Array> {
  const current = keys.MFA_ENCRYPTION_KEY;
  const previous = keys.MFA_ENCRYPTION_KEY_PREVIOUS;
  const v2 = /^v2\.([A-Za-z0-9_-]{8})\.(.*)$/.exec(sealed);
  if (v2) {
    const [, kid, rest] = v2;
    const key = await subkey(current, SEAL); // without the current key nothing opens (ConfigError), as ever
    if (kid === (await keyId(current!))) return openWith(key, userId, `v1.${rest}`);
    if (previous === undefined || kid !== (await keyId(previous))) throw new Error("sealed under a key that is not configured");
    return openWith(await subkey(previous, SEAL), userId, `v1.${rest}`);
  }
  try {
    return await openWith(await subkey(current, SEAL), userId, sealed);
  } catch (err) {
    if (err instanceof ConfigError || previous === undefined || !sealed.startsWith("v1.")) throw err;
    return openWith(await subkey(previous, SEAL), userId, sealed);
  }
}

/** The key id a v2 value names, or null for a v1 value (or anything else). */
export const sealedKeyId = (sealed: string): string | null => /^v2\.([A-Za-z0-9_-]{8})\./.exec(sealed)?.[1] ?? null;

/**
 * HMAC-SHA256 of `data` under a key derived with `label`: values that must come out the same again
 * (recovery codes shown again to a retry) without being stored in the clear.
 */
export async function derive(secret: string | undefined, label: string, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await subkey(secret, label), new TextEncoder().encode(data)));
}
