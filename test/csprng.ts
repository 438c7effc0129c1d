import { vi } from "vitest";
import { toBase64Url } from "../src/encoding";

/**
 * A recording stand-in for crypto.getRandomValues: the real CSPRNG still fills each array, and a copy
 * of every output is kept, so a test can show a value was made from the CSPRNG's output (ASVS 6.5.3,
 * 7.2.3, 11.5.1). Restored by vi.restoreAllMocks().
 */
export function recordRandom() {
  const outputs: Uint8Array[] = [];
  const real = crypto.getRandomValues.bind(crypto);
  type Filled = Parameters<typeof crypto.getRandomValues>[0];
  vi.spyOn(crypto, "getRandomValues").mockImplementation(((array: Filled) => {
    const out = real(array);
    outputs.push(new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice());
    return out;
  }) as typeof crypto.getRandomValues);
  return {
    outputs,
    /** True when `value` is one whole output, in base64url (a token, a code, a challenge). */
    made: (value: string) => outputs.some((o) => toBase64Url(o) === value),
  };
}
