import { sha256Base64Url } from "../../encoding";

/**
 * The API key's format (docs/api-keys.md): `eak_`, 40 random base62 characters (238 bits), then 6
 * base62 characters of the CRC32 of those 40. The fixed prefix lets secret scanners find leaked keys;
 * the checksum lets them (and this API) tell a key from a typo or a look-alike without any lookup.
 * Only the SHA-256 of the whole key is stored: 238 random bits need no slow hash.
 */

export const KEY_PREFIX = "eak_";
export const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_CHARS = 40;
const CHECKSUM_CHARS = 6;
export const KEY_LENGTH = KEY_PREFIX.length + RANDOM_CHARS + CHECKSUM_CHARS;
/** What a list shows to recognise a key: the prefix and 8 random characters (47 bits of 238). */
const START_CHARS = 12;

const SHAPE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${RANDOM_CHARS + CHECKSUM_CHARS}}$`);

/** 40 base62 characters from crypto.getRandomValues: bytes of 248 and above are dropped, so each character is uniform. */
function randomBase62(count: number): string {
  let out = "";
  while (out.length < count) {
    for (const b of crypto.getRandomValues(new Uint8Array(count * 2))) {
      if (b >= 248) continue; // 248 = 4 * 62: keeping them would favour the first 8 characters
      out += ALPHABET[b % 62];
      if (out.length === count) break;
    }
  }
  return out;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zlib's crc32) of an ASCII string. */
export function crc32(text: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < text.length; i++) c = CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A 32-bit number as 6 base62 characters, most significant first, zero-padded ("0"). */
function checksumOf(random: string): string {
  let n = crc32(random);
  let out = "";
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** A new key: shown once to its creator, never stored. */
export function generateKey(): string {
  const random = randomBase62(RANDOM_CHARS);
  return `${KEY_PREFIX}${random}${checksumOf(random)}`;
}

/** `text` if it is a key of this format (prefix, length, alphabet and checksum), else null: no lookup. */
export function parseKey(text: string): string | null {
  if (!SHAPE.test(text)) return null;
  const random = text.slice(KEY_PREFIX.length, KEY_PREFIX.length + RANDOM_CHARS);
  return text.slice(KEY_PREFIX.length + RANDOM_CHARS) === checksumOf(random) ? text : null;
}

/** What is stored and looked up: the SHA-256 of the whole key, base64url. */
export const keyHash = (key: string) => sha256Base64Url(key);

/** The key's first characters, kept to recognise it in a list. */
export const keyStart = (key: string) => key.slice(0, START_CHARS);
