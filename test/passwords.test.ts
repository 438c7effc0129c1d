import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { dummyVerify, hashPassword, needsRehash, passwordOptions, verifyPassword } from "../src/auth/core/passwords";
import { ConfigError, getConfig, MAX_PASSWORD_ITERATIONS } from "../src/config";

const opts = { iterations: 100_000, pepper: "pepper-for-tests-000000" };

afterEach(() => vi.restoreAllMocks());

describe("passwords", () => {
  it("round-trips: the right password verifies, a wrong one does not", async () => {
    const stored = await hashPassword("s3cret password", opts);
    expect(await verifyPassword("s3cret password", stored, opts)).toBe(true);
    expect(await verifyPassword("s3cret passworD", stored, opts)).toBe(false);
    expect(await verifyPassword("", stored, opts)).toBe(false);
  });

  it("stores a self-describing string with a fresh 16-byte salt each time", async () => {
    const a = await hashPassword("same password 1", opts);
    const b = await hashPassword("same password 1", opts);
    expect(a).toMatch(/^\$pbkdf2-sha256\$i=100000,p=1,k=[A-Za-z0-9_-]{8}\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("same password");
  });

  it("normalizes to NFC, so composed and decomposed input are the same password", async () => {
    const composed = "caf\u00e9 latte 1";
    const decomposed = "cafe\u0301 latte 1";
    const stored = await hashPassword(composed, opts);
    expect(await verifyPassword(decomposed, stored, opts)).toBe(true);
  });

  it("needs the same pepper: a peppered hash fails with another pepper or none", async () => {
    const stored = await hashPassword("pepper test 9", opts);
    expect(await verifyPassword("pepper test 9", stored, { ...opts, pepper: "another-pepper-0000000" })).toBe(false);
    expect(await verifyPassword("pepper test 9", stored, { iterations: opts.iterations })).toBe(false);
  });

  it("still verifies a hash made before a pepper was configured, and asks for a rehash", async () => {
    const unpeppered = await hashPassword("legacy pass 7", { iterations: 10_000 });
    expect(await verifyPassword("legacy pass 7", unpeppered, opts)).toBe(true);
    expect(await needsRehash(unpeppered, opts)).toBe(true);
  });

  it("needsRehash is true for other iterations or malformed strings, false for current ones", async () => {
    const current = await hashPassword("rehash me 1", opts);
    expect(await needsRehash(current, opts)).toBe(false);
    expect(await needsRehash(current, { ...opts, iterations: 50_000 })).toBe(true);
    expect(await needsRehash("not a hash", opts)).toBe(true);
  });

  it("rejects malformed stored strings instead of throwing", async () => {
    for (const bad of ["", "$pbkdf2-sha256$i=100000,p=1$!!$!!", `$pbkdf2-sha256$i=900000,p=0$AAAAAAAAAAAAAAAAAAAAAA$${"A".repeat(43)}`, "$argon2id$v=19$x"]) {
      expect(await verifyPassword("whatever 1", bad, opts)).toBe(false);
    }
  });

  it("dummyVerify answers false after the work of a real verify: the pepper's HMAC and PBKDF2 at the configured iterations", async () => {
    const configured = passwordOptions(getConfig(env));
    const stored = await hashPassword("the real one 1", configured);
    // What crypto.subtle is asked to do, recorded around the real calls (which still run).
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    const sign = vi.spyOn(crypto.subtle, "sign");
    const work = () => ({
      pbkdf2: derive.mock.calls.map(([alg, , bits]) => {
        const { name, hash, iterations } = alg as { name: string; hash: string; iterations: number };
        return { name, hash, iterations, bits };
      }),
      hmac: sign.mock.calls.map(([alg]) => alg),
    });
    expect(await verifyPassword("a wrong one 1", stored, configured)).toBe(false);
    const real = work();
    expect(real.pbkdf2).toEqual([{ name: "PBKDF2", hash: "SHA-256", iterations: configured.iterations, bits: 256 }]);
    derive.mockClear();
    sign.mockClear();
    expect(await dummyVerify("anything 1", configured)).toBe(false);
    expect(work()).toEqual(real);
  });
});

describe("the production PBKDF2 cap (100,000 iterations)", () => {
  it("is the module's ceiling", () => {
    expect(MAX_PASSWORD_ITERATIONS).toBeLessThanOrEqual(100_000);
  });

  it("is not exceeded by the configured count in wrangler.toml", () => {
    expect(getConfig(env).PASSWORD_ITERATIONS).toBeLessThanOrEqual(100_000);
  });

  it("refuses to hash above the cap, even though local workerd would allow it", async () => {
    await expect(hashPassword("too costly 1", { iterations: 100_001 })).rejects.toThrow(RangeError);
  });

  it("makes a config above the cap fail loudly", () => {
    expect(() => getConfig({ ...env, PASSWORD_ITERATIONS: "100001" })).toThrow(ConfigError);
  });
});
