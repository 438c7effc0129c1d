/**
 * Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second steps, 6 digits,
 * the parameters every authenticator app expects. The HMAC runs in WebCrypto. Knows nothing of
 * storage: verifyTotp returns the step a code matched, and the caller makes each step good once.
 */

export const STEP_SECONDS = 30;
const DIGITS = 6;
/** Steps either side of now that still match: ±30 s of clock skew between phone and server. */
const SKEW = 1;
export const TOTP_CODE = /^\d{6}$/;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding: how authenticator apps take a secret. */
export function toBase32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function fromBase32(text: string): Uint8Array {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text.toUpperCase().replace(/=+$/, "")) {
    const index = ALPHABET.indexOf(ch);
    if (index < 0) throw new Error("not base32");
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Uint8Array.from(bytes);
}

/**
 * The HMAC a secret is used with follows from its length, so no column says it: 20 bytes (160 bits,
 * RFC 4226's length for HMAC-SHA-1, what every authenticator app computes) or 32 bytes for
 * HMAC-SHA-256 (RFC 6238's own test key length for it; TOTP_ALGORITHM = "SHA256", docs/crypto.md).
 */
export type TotpAlgorithm = "SHA1" | "SHA256";
const SECRET_BYTES: Record<TotpAlgorithm, number> = { SHA1: 20, SHA256: 32 };
export const totpAlgorithmOf = (secret: Uint8Array): TotpAlgorithm => (secret.length === SECRET_BYTES.SHA256 ? "SHA256" : "SHA1");

/** A new secret for `algorithm`, from the CSPRNG. */
export const newTotpSecret = (algorithm: TotpAlgorithm = "SHA1") => crypto.getRandomValues(new Uint8Array(SECRET_BYTES[algorithm]));

export const stepAt = (time: Date) => Math.floor(time.getTime() / 1000 / STEP_SECONDS);

const hmacKey = (secret: Uint8Array) =>
  crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: totpAlgorithmOf(secret) === "SHA256" ? "SHA-256" : "SHA-1" }, false, ["sign"]);

async function codeFor(key: CryptoKey, step: number): Promise<string> {
  const counter = new DataView(new ArrayBuffer(8));
  counter.setUint32(0, Math.floor(step / 2 ** 32));
  counter.setUint32(4, step >>> 0);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, counter.buffer));
  // Dynamic truncation (RFC 4226 section 5.3).
  const offset = mac[mac.length - 1]! & 0xf;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** DIGITS).padStart(DIGITS, "0");
}

/** The code an authenticator shows at `time` (tests and the benchmark use it too). */
export async function totpCode(secret: Uint8Array, time: Date): Promise<string> {
  return codeFor(await hmacKey(secret), stepAt(time));
}

/**
 * The step `code` belongs to, within ±SKEW steps of `now` and later than `after` (the last step a
 * code was accepted for: a code is good once), or null. Compared in constant time.
 */
export async function verifyTotp(secret: Uint8Array, code: string, now: Date, after = 0): Promise<number | null> {
  if (!TOTP_CODE.test(code)) return null;
  const key = await hmacKey(secret);
  const sent = new TextEncoder().encode(code);
  let matched: number | null = null;
  const current = stepAt(now);
  for (let step = current - SKEW; step <= current + SKEW; step++) {
    const expected = new TextEncoder().encode(await codeFor(key, step));
    if (crypto.subtle.timingSafeEqual(expected, sent) && step > after && matched === null) matched = step;
  }
  return matched;
}

/** The otpauth:// URI authenticator apps read from a QR code (Google Authenticator's key URI format). */
export function otpauthUri(issuer: string, account: string, secret: Uint8Array): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const params = new URLSearchParams({
    secret: toBase32(secret),
    issuer,
    algorithm: totpAlgorithmOf(secret),
    digits: String(DIGITS),
    period: String(STEP_SECONDS),
  });
  return `otpauth://totp/${label}?${params}`;
}
