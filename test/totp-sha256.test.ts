import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fromBase32, otpauthUri, totpCode, verifyTotp } from "../src/auth/core/totp";
import { awayFromStepEdge, call, codeAt, expectError, PASSWORD, registerUser, userWithTotp } from "./helpers";

/**
 * TOTP with HMAC-SHA-256 for new setups (TOTP_ALGORITHM = "SHA256", ASVS 11.4.1): a 32-byte secret
 * means SHA-256, a 20-byte one SHA-1, so setups made before keep working (docs/crypto.md).
 */

const SHA256 = { TOTP_ALGORITHM: "SHA256" } as Partial<Env>;

/** RFC 4226's code with HMAC-SHA-1 over any key: what an app that ignores the URI's algorithm shows. */
async function sha1Code(secret: Uint8Array, time: Date) {
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const counter = new DataView(new ArrayBuffer(8));
  counter.setUint32(4, Math.floor(time.getTime() / 30_000));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, counter.buffer));
  const o = mac[19]! & 0xf;
  return String((((mac[o]! & 0x7f) << 24) | (mac[o + 1]! << 16) | (mac[o + 2]! << 8) | mac[o + 3]!) % 1_000_000).padStart(6, "0");
}

describe("TOTP with HMAC-SHA-256", () => {
  // RFC 6238 appendix B, SHA-256, the 32-byte secret "12345678901234567890123456789012", truncated to 6 digits.
  const rfcSecret = new TextEncoder().encode("12345678901234567890123456789012");

  it("matches the RFC's SHA-256 test vectors for a 32-byte secret", async () => {
    expect(await totpCode(rfcSecret, new Date(59_000))).toBe("119246");
    expect(await totpCode(rfcSecret, new Date(1_111_111_109_000))).toBe("084774");
    expect(await totpCode(rfcSecret, new Date(1_234_567_890_000))).toBe("819424");
    expect(await totpCode(rfcSecret, new Date(20_000_000_000_000))).toBe("737706");
    expect(await verifyTotp(rfcSecret, "119246", new Date(59_000))).toBe(1);
  });

  it("says SHA256 in the otpauth URI of a 32-byte secret, SHA1 for a 20-byte one", () => {
    expect(new URL(otpauthUri("Edge Auth", "bob", rfcSecret)).searchParams.get("algorithm")).toBe("SHA256");
    expect(new URL(otpauthUri("Edge Auth", "bob", new Uint8Array(20))).searchParams.get("algorithm")).toBe("SHA1");
  });

  it('sets up new authenticators with SHA-256 when TOTP_ALGORITHM is "SHA256"; a SHA-1 code of that secret is refused; sign-in works', async () => {
    const reg = await registerUser();
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD }, bindings: SHA256 });
    expect(setup.status, setup.text).toBe(200);
    expect(fromBase32(setup.body.secret)).toHaveLength(32);
    expect(setup.body.otpauth_uri).toContain("algorithm=SHA256");
    await awayFromStepEdge();
    const wrong = await call("POST", "/mfa/totp/enable", {
      token: reg.access_token,
      body: { code: await sha1Code(fromBase32(setup.body.secret), new Date()) },
    });
    expectError(wrong, 401, "invalid_mfa_code");
    const enabled = await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(setup.body.secret, -1) } });
    expect(enabled.status, enabled.text).toBe(200);
    const first = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    const second = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(setup.body.secret) } });
    expect(second.status, second.text).toBe(200);
  });

  it("keeps a SHA-1 setup made before working after the switch", async () => {
    const u = await userWithTotp();
    expect(fromBase32(u.secret)).toHaveLength(20);
    const first = await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD }, bindings: SHA256 });
    const second = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(u.secret) }, bindings: SHA256 });
    expect(second.status, second.text).toBe(200);
  });

  it('defaults to SHA-1 (what every authenticator app computes): TOTP_ALGORITHM is "SHA1" in wrangler.toml', () => {
    expect(env.TOTP_ALGORITHM).toBe("SHA1");
  });
});
