import type { Config } from "../../config";
import { toBase64Url } from "../../encoding";

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
