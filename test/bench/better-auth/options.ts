import type { BetterAuthOptions } from "better-auth";
import { anonymous, organization, twoFactor } from "better-auth/plugins";

/**
 * better-auth as the bench's peer (scripts/bench-peer.mjs) configures it: email and password, and the
 * plugins for what our API also has on every request (guests, TOTP, organizations), so each side runs
 * with its features on. Its own rate limiter off (the bench sends from one machine) and no telemetry.
 * `hash` "pbkdf2" swaps its default scrypt for PBKDF2-SHA256 at our count, through its documented
 * emailAndPassword.password hooks. Never deployed; schema.sql is generated from these (generate-schema.mjs).
 */
export function peerOptions(hash: "scrypt" | "pbkdf2", iterations: number): BetterAuthOptions {
  return {
    emailAndPassword: { enabled: true, ...(hash === "pbkdf2" ? { password: pbkdf2(iterations) } : {}) },
    plugins: [anonymous(), organization(), twoFactor()],
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
  };
}

const encoder = new TextEncoder();
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** PBKDF2-HMAC-SHA256, 16-byte salt, 32-byte key, as src/auth/core/passwords.ts derives (less its pepper, one HMAC). */
function pbkdf2(iterations: number) {
  const derive = async (password: string, salt: Uint8Array) => {
    const key = await crypto.subtle.importKey("raw", encoder.encode(password.normalize("NFC")), "PBKDF2", false, ["deriveBits"]);
    return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256));
  };
  return {
    hash: async (password: string) => {
      const salt = crypto.getRandomValues(new Uint8Array(16));
      return `${hex(salt)}:${hex(await derive(password, salt))}`;
    },
    verify: async ({ hash, password }: { hash: string; password: string }) => {
      const [salt, stored] = hash.split(":");
      if (!salt || !stored) return false;
      const bytes = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => Number.parseInt(b, 16)));
      const derived = await derive(password, bytes(salt));
      const expected = bytes(stored);
      let diff = derived.length ^ expected.length;
      for (let i = 0; i < derived.length; i++) diff |= derived[i]! ^ (expected[i] ?? 0);
      return diff === 0;
    },
  };
}
