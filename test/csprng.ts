import { vi } from "vitest";
import { toBase64Url } from "../src/encoding";

/**
 * A recording stand-in for `crypto.getRandomValues` (ASVS 6.5.3, 7.2.3, 11.5.1): every output is kept,
 * so a test can show that a secret is made of those bytes, or derived from them. Without a seed the
 * real CSPRNG still fills each array; with one, a deterministic stream does (xorshift32: not random at
 * all, which is the point: the same seed gives the same secret, another seed another one). Restored
 * by `restore()` or vi.restoreAllMocks().
 */
export function recordRandom(seed?: number) {
  const outputs: Uint8Array[] = [];
  const real = crypto.getRandomValues.bind(crypto);
  let state = seed === undefined ? 0 : seed >>> 0 || 1;
  type Filled = Parameters<typeof crypto.getRandomValues>[0];
  const spy = vi.spyOn(crypto, "getRandomValues").mockImplementation(((array: Filled) => {
    if (!array) return array;
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    if (seed === undefined) real(array);
    else
      for (let i = 0; i < bytes.length; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        bytes[i] = state & 0xff;
      }
    outputs.push(bytes.slice());
    return array;
  }) as typeof crypto.getRandomValues);
  return {
    /** Each call's bytes, in order. */
    outputs,
    handedOut: outputs,
    /** Whether `value` is exactly the bytes of one call. */
    gave: (value: Uint8Array) => outputs.some((b) => b.length === value.length && b.every((x, i) => x === value[i])),
    /** Whether `value` is one whole output, in base64url (a token, a code, a challenge). */
    made: (value: string) => outputs.some((o) => toBase64Url(o) === value),
    restore: () => spy.mockRestore(),
  };
}

/** Runs `fn` with the recording stand-in (seeded) in place, and always puts the real one back. */
export async function withRecordedRandom<T>(seed: number, fn: (rec: ReturnType<typeof recordRandom>) => Promise<T>): Promise<T> {
  const rec = recordRandom(seed);
  try {
    return await fn(rec);
  } finally {
    rec.restore();
  }
}
