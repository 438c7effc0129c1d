import { afterEach, describe, expect, it, vi } from "vitest";
import { ALPHABET } from "../src/auth/api-keys/format";
import { createKeyAs } from "./api-keys-setup";
import { recordRandom } from "./csprng";
import { call, mailbox, PASSWORD, registerUser, uniqueName, userWithTotp } from "./helpers";
import { approvedCode, codeForm, createTestClient, tokenRequest } from "./oauth";

/**
 * Every value that must be unguessable is the CSPRNG's output, whole (ASVS 7.2.3, 11.5.1): with
 * crypto.getRandomValues recorded, each token, code and challenge an answer carries is one of its
 * outputs, of at least 128 bits. (UUIDs name only what is not secret; TOTP secrets and recovery
 * codes: test/mfa.test.ts.)
 */

afterEach(() => vi.restoreAllMocks());

const BITS_128 = 16;

describe("unguessable values come from crypto.getRandomValues", () => {
  it("a refresh token (sign-up, sign-in, rotation) is 32 bytes of its output", async () => {
    const random = recordRandom();
    const reg = await registerUser();
    const login = await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD } });
    const rotated = await call("POST", "/refresh", { body: { refresh_token: login.body.refresh_token } });
    expect(rotated.status, rotated.text).toBe(200);
    expect(random.made(reg.refresh_token)).toBe(true);
    expect(random.made(login.body.refresh_token)).toBe(true);
    // A rotation's successor is an HMAC of the token it replaces (retries get it again): made from one.
    expect(random.made(rotated.body.refresh_token)).toBe(false);
    expect(reg.refresh_token).not.toBe(login.body.refresh_token);
    for (const t of [reg.refresh_token, login.body.refresh_token]) expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
  });

  it("a refresh token is not made without it: a stub that answers zeros makes a zero token", async () => {
    vi.spyOn(crypto, "getRandomValues").mockImplementation(((a: Uint8Array) => a) as typeof crypto.getRandomValues);
    // A fresh user id (a UUID) keeps the session row unique; the token is all zeros.
    const res = await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD } });
    vi.restoreAllMocks();
    expect(res.status, res.text).toBe(201);
    expect(res.body.refresh_token).toBe("A".repeat(43));
  });

  it("a mailed link's token is 32 bytes of its output", async () => {
    const box = mailbox();
    const email = `${uniqueName("csprng")}@example.com`;
    const random = recordRandom();
    const res = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD } });
    expect(res.status, res.text).toBe(201);
    expect(random.made(box.link(email, "verify-email"))).toBe(true);
  });

  it("a login's second-step challenge and a passkey challenge are 32 bytes of its output", async () => {
    const u = await userWithTotp();
    const random = recordRandom();
    const first = await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD } });
    expect(first.body.challenge).toBeDefined();
    expect(random.made(first.body.challenge)).toBe(true);
    const options = await call("POST", "/passkeys/login/options");
    expect(options.status, options.text).toBe(200);
    expect(random.made(options.body.options.challenge)).toBe(true);
    for (const c of [first.body.challenge, options.body.options.challenge]) expect(c.length).toBeGreaterThanOrEqual(43);
  });

  it("an API key's 40 random characters are its output, mapped to base62 (bytes from 248 up dropped)", async () => {
    const reg = await registerUser();
    const random = recordRandom();
    const res = await createKeyAs(reg.access_token);
    expect(res.status, res.text).toBe(201);
    const chars = (res.body.secret as string).slice("eak_".length, "eak_".length + 40);
    const base62 = (o: Uint8Array) =>
      [...o]
        .filter((b) => b < 248)
        .map((b) => ALPHABET[b % 62])
        .join("")
        .slice(0, 40);
    expect(random.outputs.some((o) => o.length === 80 && base62(o) === chars)).toBe(true);
  });

  it("the authorization server's codes and refresh tokens are 32 bytes of its output", async () => {
    const client = await createTestClient();
    const user = await registerUser();
    const random = recordRandom();
    const code = await approvedCode(client, user, { scope: "openid offline_access" });
    const tokens = await tokenRequest(codeForm(client, code));
    expect(tokens.status, tokens.text).toBe(200);
    expect(random.made(code.code)).toBe(true);
    expect(random.made(code.requestId)).toBe(true); // the authorization request's id, in the consent page's URL
    expect(random.made(tokens.body.refresh_token)).toBe(true);
    for (const v of [code.code, tokens.body.refresh_token]) expect(v.length).toBeGreaterThanOrEqual(Math.ceil((BITS_128 * 8) / 6));
  });
});
