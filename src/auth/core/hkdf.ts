import type { Config } from "../../config";
import { sha256Base64Url, toBase64Url } from "../../encoding";

/**
 * Keys derived with HKDF-SHA256 from a secret of the Worker, one per purpose (`label`), imported
 * once per isolate and secret: the one cache of derived keys (auth/core/secrets.ts, auth/core/refresh-tokens.ts).
 */

const keys = new Map<string, Promise<CryptoKey>>();

export function derivedKey(
  secret: Uint8Array,
  label: string,
  algorithm: SubtleCryptoImportKeyAlgorithm,
  usages: ("sign" | "encrypt" | "decrypt")[],
): Promise<CryptoKey> {
  const name = `${label}\u0000${toBase64Url(secret)}`;
  let key = keys.get(name);
  if (!key) {
    key = crypto.subtle
      .importKey("raw", secret, "HKDF", false, ["deriveKey"])
      .then((master) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: new TextEncoder().encode(label) },
          master,
          algorithm,
          false,
          usages,
        ),
      );
    key.catch(() => keys.delete(name));
    keys.set(name, key);
  }
  return key;
}

/**
 * An HMAC key for `label` derived from the Worker's signing secret (JWT_PRIVATE_KEY, or the wrapping
 * key where the ring has none): refresh successors, mail job tokens, mail budget recipients.
 * Replacing that secret changes every value made with it.
 */
export const serverHmacKey = (config: Pick<Config, "JWT_PRIVATE_KEY" | "JWT_WRAPPING_KEY">, label: string) =>
  derivedKey(new TextEncoder().encode(config.JWT_PRIVATE_KEY ?? config.JWT_WRAPPING_KEY!), label, { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign"]);

const ids = new Map<string, Promise<string>>();

/**
 * A secret's id where data names the key it was made with (a pepper in a password hash, the MFA key
 * in a sealed value): 8 base64url characters (48 bits) of its SHA-256. It lets whoever holds the data
 * test guesses at the secret, so it is used only for secrets of 32 random bytes, where that is hopeless.
 */
export function keyId(secret: string): Promise<string> {
  let id = ids.get(secret);
  if (!id) {
    id = sha256Base64Url(secret).then((h) => h.slice(0, 8));
    ids.set(secret, id);
  }
  return id;
}
