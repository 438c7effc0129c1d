import { MAX_PASSWORD_ITERATIONS } from "../../config";
import { fromBase64Url, randomBytes, toBase64Url } from "../../encoding";
import { keyId } from "./hkdf";

/**
 * PBKDF2-HMAC-SHA256 password hashing through WebCrypto.
 *
 * Stored form (PHC-like, self-describing so the cost and the pepper can change later):
 *   $pbkdf2-sha256$i=<iterations>,p=<0|1>[,k=<pepper id>]$<salt>$<hash>
 * p=1 means the password was HMAC'd with a pepper before PBKDF2; k names which one (pepperId), so
 * during a rotation a hash under PASSWORD_PEPPER_PREVIOUS still verifies, and is rehashed under the
 * current pepper at the next sign-in. A peppered hash without k predates pepper ids: it was made with
 * the pepper of before any rotation, the previous one while one is set, else the current (docs/crypto.md).
 */

const ALGORITHM = "pbkdf2-sha256";
const SALT_BYTES = 16;
const HASH_BITS = 256;
const encoder = new TextEncoder();

export interface PasswordOptions {
  iterations: number;
  pepper?: string;
  /** Accepted for verification only, while hashes move to `pepper` (PASSWORD_PEPPER_PREVIOUS). */
  previousPepper?: string;
}

/** The options every hash and check uses, from the config (the one place they are built). */
export const passwordOptions = (config: { PASSWORD_ITERATIONS: number; PASSWORD_PEPPER?: string; PASSWORD_PEPPER_PREVIOUS?: string }): PasswordOptions => ({
  iterations: config.PASSWORD_ITERATIONS,
  pepper: config.PASSWORD_PEPPER,
  previousPepper: config.PASSWORD_PEPPER_PREVIOUS,
});

/** A pepper's id in the stored string (auth/core/hkdf.ts keyId): written only for peppers of 32 random bytes (config.ts). */
export const pepperId = keyId;

interface Parsed {
  iterations: number;
  peppered: boolean;
  kid: string | undefined;
  salt: Uint8Array;
  hash: Uint8Array;
}

async function derive(password: string, salt: Uint8Array, iterations: number, pepper: string | undefined): Promise<Uint8Array> {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PASSWORD_ITERATIONS) {
    throw new RangeError(`PBKDF2 iterations must be 1..${MAX_PASSWORD_ITERATIONS}`);
  }
  let material: Uint8Array = encoder.encode(password.normalize("NFC"));
  if (pepper !== undefined) {
    const key = await crypto.subtle.importKey("raw", encoder.encode(pepper), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    material = new Uint8Array(await crypto.subtle.sign("HMAC", key, material));
  }
  const key = await crypto.subtle.importKey("raw", material, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, HASH_BITS);
  return new Uint8Array(bits);
}

function parse(stored: string): Parsed | null {
  const m = /^\$pbkdf2-sha256\$i=(\d{1,7}),p=([01])(?:,k=([A-Za-z0-9_-]{8}))?\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return null;
  const iterations = Number(m[1]);
  const salt = fromBase64Url(m[4]!);
  const hash = fromBase64Url(m[5]!);
  if (iterations < 1 || iterations > MAX_PASSWORD_ITERATIONS || !salt || !hash || hash.length !== HASH_BITS / 8) return null;
  if (m[2] === "0" && m[3] !== undefined) return null;
  return { iterations, peppered: m[2] === "1", kid: m[3], salt, hash };
}

/** The pepper a peppered hash was made with, when it is one of the configured ones. */
async function pepperOf(parsed: Parsed, options: PasswordOptions): Promise<string | undefined> {
  const { pepper, previousPepper } = options;
  if (parsed.kid === undefined) return previousPepper ?? pepper; // made before pepper ids: see the top
  if (pepper !== undefined && (await pepperId(pepper)) === parsed.kid) return pepper;
  if (previousPepper !== undefined && (await pepperId(previousPepper)) === parsed.kid) return previousPepper;
  return undefined;
}

export async function hashPassword(password: string, options: PasswordOptions): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, options.iterations, options.pepper);
  const p = options.pepper !== undefined ? `1,k=${await pepperId(options.pepper)}` : "0";
  return `$${ALGORITHM}$i=${options.iterations},p=${p}$${toBase64Url(salt)}$${toBase64Url(hash)}`;
}

/** Constant-time check of a password against a stored string; false for malformed strings. */
export async function verifyPassword(password: string, stored: string, options: PasswordOptions): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) return false;
  // A peppered hash cannot be checked without its pepper; an unpeppered one is checked as stored.
  const pepper = parsed.peppered ? await pepperOf(parsed, options) : undefined;
  if (parsed.peppered && pepper === undefined) {
    // Its pepper is gone: the same work as a wrong password, so the answer's time says nothing.
    if (options.pepper !== undefined) await dummyVerify(password, options);
    return false;
  }
  const candidate = await derive(password, parsed.salt, parsed.iterations, pepper);
  return crypto.subtle.timingSafeEqual(candidate, parsed.hash);
}

/** True when the stored string was made with other parameters than the current ones (or another pepper, or none). */
export async function needsRehash(stored: string, options: PasswordOptions): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) return true;
  if (parsed.iterations !== options.iterations || parsed.peppered !== (options.pepper !== undefined)) return true;
  return options.pepper !== undefined && parsed.kid !== (await pepperId(options.pepper));
}

const DUMMY_SALT = new Uint8Array(SALT_BYTES);

/** Spends the same work as a real verify, so an unknown username costs as long as a wrong password. */
export async function dummyVerify(password: string, options: PasswordOptions): Promise<false> {
  const candidate = await derive(password, DUMMY_SALT, options.iterations, options.pepper);
  crypto.subtle.timingSafeEqual(candidate, new Uint8Array(candidate.length));
  return false;
}
