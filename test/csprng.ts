import { vi } from "vitest";

/**
 * A recording stand-in for `crypto.getRandomValues` (ASVS 6.5.3, 7.2.3, 11.5.1): every call is
 * answered from a deterministic stream seeded by `seed` and the bytes handed out are kept, so a test
 * can show that a secret is made of those bytes (or derived from them: the same seed gives the same
 * secret, another seed another one). Call `restore()` when done (or use `using`-style try/finally).
 */
export function recordRandom(seed = 1) {
  const handedOut: Uint8Array[] = [];
  let state = seed >>> 0 || 1;
  const spy = vi.spyOn(crypto, "getRandomValues").mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
    if (!array) return array;
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i++) {
      // xorshift32: not random at all, which is the point: the output is the stub's, and known.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      bytes[i] = state & 0xff;
    }
    handedOut.push(bytes.slice());
    return array;
  });
  return {
    /** Each call's bytes, in order. */
    handedOut,
    /** Whether `value` is exactly the bytes of one call. */
    gave: (value: Uint8Array) => handedOut.some((b) => b.length === value.length && b.every((x, i) => x === value[i])),
    restore: () => spy.mockRestore(),
  };
}

/** Runs `fn` with the recording stand-in in place, and always puts the real one back. */
export async function withRecordedRandom<T>(seed: number, fn: (rec: ReturnType<typeof recordRandom>) => Promise<T>): Promise<T> {
  const rec = recordRandom(seed);
  try {
    return await fn(rec);
  } finally {
    rec.restore();
  }
}
