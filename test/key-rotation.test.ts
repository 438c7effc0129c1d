import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { keyId } from "../src/auth/core/hkdf";
import { hashPassword, needsRehash, verifyPassword } from "../src/auth/core/passwords";
import { open, seal } from "../src/auth/core/secrets";
import { resealSecrets } from "../src/cron";
import { getDb } from "../src/db/client";
import { replaceSealed } from "../src/db/totp-seals";
import { awayFromStepEdge, call, codeAt, expectError, PASSWORD, registerUser, userWithTotp } from "./helpers";

/**
 * Rotating PASSWORD_PEPPER and MFA_ENCRYPTION_KEY (docs/crypto.md): the previous one keeps working
 * while the data moves to the new one (a password at its next sign-in, a TOTP secret by the cron),
 * and data made before key ids (a hash without k=, a "v1" sealed value) keeps working too.
 */

afterEach(() => vi.restoreAllMocks());

const OLD_PEPPER = env.PASSWORD_PEPPER;
const NEW_PEPPER = "bmV3LXBlcHBlci0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ"; // 32 bytes, base64url
const SHORT_PEPPER = "an-old-short-pepper"; // what config.ts accepted before issue 31: 16 characters or more
const OLD_MFA = env.MFA_ENCRYPTION_KEY;
const NEW_MFA = "bmV3LW1mYS1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM"; // 32 bytes, base64url
const ITERATIONS = 100_000;

/** A hash as the code before pepper ids wrote it: no k=. */
const withoutKeyId = (stored: string) => stored.replace(/,k=[A-Za-z0-9_-]{8}/, "");
const storedHash = async (id: string) =>
  (await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(id).first<{ password_hash: string }>())!.password_hash;
const storedSecret = async (id: string) =>
  (await env.DB.prepare("SELECT totp_secret FROM users WHERE id = ?").bind(id).first<{ totp_secret: string }>())!.totp_secret;
const loginAs = (username: string, bindings: Record<string, string>) =>
  call("POST", "/login", { body: { username, password: PASSWORD }, bindings: bindings as Partial<Env> });

describe("rotating PASSWORD_PEPPER", () => {
  it("names the pepper in the hash: one under the previous pepper verifies and asks for a rehash; one under neither does not verify", async () => {
    const stored = await hashPassword("rotate me 1", { iterations: ITERATIONS, pepper: OLD_PEPPER });
    expect(stored).toMatch(new RegExp(`^\\$pbkdf2-sha256\\$i=100000,p=1,k=${await keyId(OLD_PEPPER)}\\$`));
    const rotating = { iterations: ITERATIONS, pepper: NEW_PEPPER, previousPepper: OLD_PEPPER };
    expect(await verifyPassword("rotate me 1", stored, rotating)).toBe(true);
    expect(await verifyPassword("rotate me 2", stored, rotating)).toBe(false);
    expect(await needsRehash(stored, rotating)).toBe(true);
    expect(await verifyPassword("rotate me 1", stored, { iterations: ITERATIONS, pepper: NEW_PEPPER })).toBe(false);
    const fresh = await hashPassword("rotate me 1", rotating);
    expect(fresh).toContain(`,k=${await keyId(NEW_PEPPER)}$`);
    expect(await needsRehash(fresh, rotating)).toBe(false);
  });

  it("spends the same work on a hash whose pepper is gone as on a wrong password", async () => {
    const stored = await hashPassword("rotate me 3", { iterations: ITERATIONS, pepper: OLD_PEPPER });
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    expect(await verifyPassword("rotate me 3", stored, { iterations: ITERATIONS, pepper: NEW_PEPPER })).toBe(false);
    expect(derive.mock.calls.map(([alg]) => (alg as { iterations: number }).iterations)).toEqual([ITERATIONS]);
  });

  it("reads a peppered hash from before pepper ids (no k=) as the current pepper, or the previous one while one is set", async () => {
    const legacy = withoutKeyId(await hashPassword("legacy one 1", { iterations: ITERATIONS, pepper: SHORT_PEPPER }));
    expect(legacy).toMatch(/^\$pbkdf2-sha256\$i=100000,p=1\$/);
    // Upgraded, pepper unchanged: it is the current one; rehashed at the next sign-in, to gain its k=.
    const upgraded = { iterations: ITERATIONS, pepper: SHORT_PEPPER };
    expect(await verifyPassword("legacy one 1", legacy, upgraded)).toBe(true);
    expect(await needsRehash(legacy, upgraded)).toBe(true);
    // Upgraded with the short pepper moved to PASSWORD_PEPPER_PREVIOUS (config.ts now refuses it as the current one).
    const rotated = { iterations: ITERATIONS, pepper: NEW_PEPPER, previousPepper: SHORT_PEPPER };
    expect(await verifyPassword("legacy one 1", legacy, rotated)).toBe(true);
    expect(await needsRehash(legacy, rotated)).toBe(true);
    expect(await verifyPassword("legacy one 1", legacy, { iterations: ITERATIONS, pepper: NEW_PEPPER })).toBe(false);
  });

  it("signs in with a password hashed under the previous pepper and rehashes it under the current one", async () => {
    const reg = await registerUser();
    const before = await storedHash(reg.user.id);
    expect(before).toContain(`,k=${await keyId(OLD_PEPPER)}$`);
    // The new pepper alone cannot check it: the previous one is needed while hashes move.
    expectError(await loginAs(reg.input.username, { PASSWORD_PEPPER: NEW_PEPPER }), 401, "invalid_credentials");
    const res = await loginAs(reg.input.username, { PASSWORD_PEPPER: NEW_PEPPER, PASSWORD_PEPPER_PREVIOUS: OLD_PEPPER });
    expect(res.status, res.text).toBe(200);
    const after = await storedHash(reg.user.id);
    expect(after).toContain(`,k=${await keyId(NEW_PEPPER)}$`);
    // Moved: the previous pepper can go.
    expect((await loginAs(reg.input.username, { PASSWORD_PEPPER: NEW_PEPPER })).status).toBe(200);
  });

  it("upgrades a deployment whose short pepper moved to PASSWORD_PEPPER_PREVIOUS: its hashes (no k=) sign in and are rehashed", async () => {
    const reg = await registerUser();
    const legacy = withoutKeyId(await hashPassword(PASSWORD, { iterations: ITERATIONS, pepper: SHORT_PEPPER }));
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?").bind(legacy, reg.user.id).run();
    const res = await loginAs(reg.input.username, { PASSWORD_PEPPER: NEW_PEPPER, PASSWORD_PEPPER_PREVIOUS: SHORT_PEPPER });
    expect(res.status, res.text).toBe(200);
    expect(await storedHash(reg.user.id)).toContain(`,k=${await keyId(NEW_PEPPER)}$`);
    expect((await loginAs(reg.input.username, { PASSWORD_PEPPER: NEW_PEPPER })).status).toBe(200);
  });

  it("keeps a hash from before pepper ids signing in after an upgrade that keeps the pepper", async () => {
    const reg = await registerUser();
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?")
      .bind(withoutKeyId(await storedHash(reg.user.id)), reg.user.id)
      .run();
    const res = await loginAs(reg.input.username, {});
    expect(res.status, res.text).toBe(200);
    expect(await storedHash(reg.user.id)).toContain(`,k=${await keyId(OLD_PEPPER)}$`);
  });
});

describe("rotating MFA_ENCRYPTION_KEY", () => {
  it("names the key in a sealed value: it opens under the previous key, not once that key is gone", async () => {
    const plain = crypto.getRandomValues(new Uint8Array(20));
    const sealed = await seal(OLD_MFA, "user-r", plain);
    expect(sealed.startsWith(`v2.${await keyId(OLD_MFA)}.`)).toBe(true);
    expect(await open({ MFA_ENCRYPTION_KEY: NEW_MFA, MFA_ENCRYPTION_KEY_PREVIOUS: OLD_MFA }, "user-r", sealed)).toEqual(plain);
    await expect(open({ MFA_ENCRYPTION_KEY: NEW_MFA }, "user-r", sealed)).rejects.toThrow();
    await expect(open({ MFA_ENCRYPTION_KEY: NEW_MFA, MFA_ENCRYPTION_KEY_PREVIOUS: OLD_MFA }, "user-s", sealed)).rejects.toThrow();
  });

  it("still opens a value sealed before key ids (v1), under the current key or the previous one", async () => {
    const plain = crypto.getRandomValues(new Uint8Array(20));
    const v1 = (await seal(OLD_MFA, "user-v", plain)).replace(/^v2\.[A-Za-z0-9_-]{8}\./, "v1.");
    expect(await open({ MFA_ENCRYPTION_KEY: OLD_MFA }, "user-v", v1)).toEqual(plain);
    expect(await open({ MFA_ENCRYPTION_KEY: NEW_MFA, MFA_ENCRYPTION_KEY_PREVIOUS: OLD_MFA }, "user-v", v1)).toEqual(plain);
    await expect(open({ MFA_ENCRYPTION_KEY: NEW_MFA }, "user-v", v1)).rejects.toThrow();
  });

  it("signs in with a code during the rotation; the cron re-seals the secret under the new key, and then the old key can go", async () => {
    const u = await userWithTotp();
    const v1User = await userWithTotp();
    // One sealed before key ids.
    await env.DB.prepare("UPDATE users SET totp_secret = ? WHERE id = ?")
      .bind((await storedSecret(v1User.user.id)).replace(/^v2\.[A-Za-z0-9_-]{8}\./, "v1."), v1User.user.id)
      .run();
    const rotating = { MFA_ENCRYPTION_KEY: NEW_MFA, MFA_ENCRYPTION_KEY_PREVIOUS: OLD_MFA } as Partial<Env>;
    const secondStep = async (who: typeof u, bindings: Partial<Env>) => {
      const first = await loginAs(who.input.username, bindings as Record<string, string>);
      expect(first.body.mfa_required, first.text).toBe(true);
      await awayFromStepEdge();
      return call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(who.secret) }, bindings });
    };
    expect((await secondStep(u, rotating)).status).toBe(200);
    // Without a previous key set the cron moves nothing.
    expect(await resealSecrets(env, new Date(Date.now() + 60_000))).toBeUndefined();
    // Secrets turned on within RETRY_GRACE stay (a retried enable re-derives its recovery codes from them).
    expect((await resealSecrets({ ...env, ...rotating }, new Date()))?.resealed).toBe(0);
    const done = await resealSecrets({ ...env, ...rotating }, new Date(Date.now() + 60_000));
    expect(done).toEqual({ resealed: 2, unopened: 0 });
    for (const who of [u, v1User]) expect((await storedSecret(who.user.id)).startsWith(`v2.${await keyId(NEW_MFA)}.`)).toBe(true);
    expect(await resealSecrets({ ...env, ...rotating }, new Date(Date.now() + 60_000))).toEqual({ resealed: 0, unopened: 0 });
    // The previous key is no longer needed (the v1 user's code of this step is unused yet).
    const res = await secondStep(v1User, { MFA_ENCRYPTION_KEY: NEW_MFA });
    expect(res.status, res.text).toBe(200);
  });

  it("re-seals only a value still as it was read: TOTP turned off or set up again meanwhile wins", async () => {
    const u = await userWithTotp();
    const read = await storedSecret(u.user.id);
    await env.DB.prepare("UPDATE users SET totp_secret = 'v2.changed0.AAAA.AAAA' WHERE id = ?").bind(u.user.id).run();
    const written = await replaceSealed(getDb(env.DB), u.user.id, read, await seal(NEW_MFA, u.user.id, new Uint8Array(20)));
    expect(written).toEqual([]);
    expect(await storedSecret(u.user.id)).toBe("v2.changed0.AAAA.AAAA");
  });
});
