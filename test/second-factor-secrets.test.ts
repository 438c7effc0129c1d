import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { recoveryCodesFor, recoveryHash } from "../src/auth/core/second-factor";
import { seal } from "../src/auth/core/secrets";
import { fromBase32, newTotpSecret } from "../src/auth/core/totp";
import { getConfig } from "../src/config";
import type { Deps } from "../src/deps";
import { withRecordedRandom } from "./csprng";
import { awayFromStepEdge, call, codeAt, expectError, PASSWORD, registerUser, userWithTotp } from "./helpers";

/**
 * The secrets of a second factor (ASVS 6.5.2, 6.5.3): recovery codes long enough for a plain hash
 * (120 bits), the old 80-bit ones still honoured until used or replaced, and the TOTP secret and the
 * codes made from the CSPRNG's output (a recording stand-in for crypto.getRandomValues: test/csprng.ts).
 */

const signInWithRecoveryCode = async (username: string, recovery_code: string) => {
  const first = await call("POST", "/login", { body: { username, password: PASSWORD } });
  expect(first.body.mfa_required, first.text).toBe(true);
  return call("POST", "/login/mfa", { body: { challenge: first.body.challenge, recovery_code } });
};

const storedHashes = async (userId: string) =>
  JSON.parse(String((await env.DB.prepare("SELECT recovery_codes FROM users WHERE id = ?").bind(userId).first())?.recovery_codes)) as string[];

describe("recovery codes", () => {
  it("new recovery codes carry 120 bits: 24 base32 characters in six groups of four, stored as SHA-256 only", async () => {
    const u = await userWithTotp();
    expect(u.recoveryCodes).toHaveLength(10);
    for (const c of u.recoveryCodes) {
      expect(c).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){5}$/);
      expect(fromBase32(c.replace(/-/g, "")).length).toBe(15); // 24 characters of 5 bits: 120 bits
    }
    const stored = await storedHashes(u.user.id);
    expect(stored.sort()).toEqual((await Promise.all(u.recoveryCodes.map(recoveryHash))).sort());
    for (const c of u.recoveryCodes) expect(JSON.stringify(stored)).not.toContain(c.replace(/-/g, ""));
  });

  it("a recovery code is accepted in capitals, without dashes, or with spaces", async () => {
    const u = await userWithTotp();
    const [a, b, c] = u.recoveryCodes as [string, string, string];
    for (const typed of [a.toUpperCase(), b.replace(/-/g, ""), c.replace(/-/g, " ")]) {
      const res = await signInWithRecoveryCode(u.input.username, typed);
      expect(res.status, res.text).toBe(200);
    }
    expect(await storedHashes(u.user.id)).toHaveLength(7);
  });

  it("a recovery code of the old 80-bit format, handed out before, still signs in once, then is spent", async () => {
    const u = await userWithTotp();
    // What an account that turned TOTP on before issue 31 holds: 16-character codes, hashed the same way.
    const old = "k7qp-2m4x-zhta-vw3e";
    await env.DB.prepare("UPDATE users SET recovery_codes = ? WHERE id = ?")
      .bind(JSON.stringify([await recoveryHash(old), ...(await storedHashes(u.user.id)).slice(1)]), u.user.id)
      .run();
    const res = await signInWithRecoveryCode(u.input.username, old.toUpperCase().replace(/-/g, ""));
    expect(res.status, res.text).toBe(200);
    expectError(await signInWithRecoveryCode(u.input.username, old), 401, "invalid_mfa_code");
  });

  it("setting TOTP up again replaces every code, an old-format one included", async () => {
    const u = await userWithTotp();
    const old = "abcd-efgh-ijkl-mnop";
    await env.DB.prepare("UPDATE users SET recovery_codes = ? WHERE id = ?")
      .bind(JSON.stringify([await recoveryHash(old), ...(await storedHashes(u.user.id)).slice(1)]), u.user.id)
      .run();
    const off = await call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, recovery_code: u.recoveryCodes[1] } });
    expect(off.status, off.text).toBe(200);
    const setup = await call("POST", "/mfa/totp/setup", { token: u.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    const on = await call("POST", "/mfa/totp/enable", { token: u.access_token, body: { code: await codeAt(setup.body.secret) } });
    expect(on.status, on.text).toBe(200);
    expect(await storedHashes(u.user.id)).not.toContain(await recoveryHash(old));
    expectError(await signInWithRecoveryCode(u.input.username, old), 401, "invalid_mfa_code");
  });
});

describe("second-factor secrets come from the CSPRNG", () => {
  it("the TOTP secret a setup answers is the bytes crypto.getRandomValues handed out, and changes with them", async () => {
    const reg = await registerUser();
    const secrets: string[] = [];
    for (const seed of [7, 7, 8]) {
      await withRecordedRandom(seed, async (rec) => {
        const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
        expect(setup.status, setup.text).toBe(200);
        expect(rec.gave(fromBase32(setup.body.secret))).toBe(true);
        secrets.push(setup.body.secret);
      });
    }
    expect(secrets[0]).toBe(secrets[1]); // the same stub output: the same secret
    expect(secrets[2]).not.toBe(secrets[0]);
  });

  it("the recovery codes derive from crypto.getRandomValues' output: the same output gives the same codes, other output other codes", async () => {
    const deps = { config: getConfig(env) } as unknown as Deps;
    const userId = crypto.randomUUID();
    const codesFrom = (seed: number) =>
      withRecordedRandom(seed, async (rec) => {
        const secret = newTotpSecret();
        expect(rec.gave(secret)).toBe(true);
        const sealed = await seal(deps.config.MFA_ENCRYPTION_KEY, userId, secret); // its IV from the stub too
        return recoveryCodesFor(deps, sealed);
      });
    const [a, again, b] = [await codesFrom(11), await codesFrom(11), await codesFrom(12)];
    expect(again).toEqual(a);
    expect(a).toHaveLength(10);
    for (const [i, code] of b.entries()) expect(code).not.toBe(a[i]);
  });
});
