import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, getConfig } from "../src/config";
import { call, expectError } from "./helpers";

/**
 * Every key gives at least 128 bits (ASVS 11.2.3): the AES keys are 32 bytes, the pepper 32 bytes or
 * more, each refused at start otherwise with the message that says how to make a good one.
 */

afterEach(() => vi.restoreAllMocks());

const b64 = (bytes: number) => btoa(String.fromCharCode(...new Uint8Array(bytes).fill(65))).replace(/=+$/, "");
/** The problems getConfig reports for these secrets, or [] when it takes them. */
function problems(over: Record<string, string>): string[] {
  try {
    getConfig({ ...env, ...over } as Env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe("the key sizes config.ts enforces", () => {
  it.each(["MFA_ENCRYPTION_KEY", "MFA_ENCRYPTION_KEY_PREVIOUS", "JWT_WRAPPING_KEY"])("takes %s only as 32 bytes of base64url", (name) => {
    expect(problems({ [name]: b64(32) })).toEqual([]);
    for (const bad of [b64(31), b64(33), b64(16), `${b64(32).slice(0, -1)}+`, "not a key at all, not even close to one"]) {
      expect(problems({ [name]: bad })).toEqual([expect.stringMatching(new RegExp(`^${name}: must be 32 random bytes, base64url`))]);
    }
  });

  it("takes PASSWORD_PEPPER only as 32 bytes or more of base64url (43 characters), naming the keygen", () => {
    expect(problems({ PASSWORD_PEPPER: "A".repeat(43) })).toEqual([]);
    expect(problems({ PASSWORD_PEPPER: "0123456789abcdef".repeat(4) })).toEqual([]); // openssl rand -hex 32
    for (const bad of ["A".repeat(42), "test-pepper-0123456789abcdef", "a pepper typed by hand, long enough but with spaces", `${"A".repeat(43)}=`]) {
      expect(problems({ PASSWORD_PEPPER: bad })).toEqual([
        expect.stringMatching(/^PASSWORD_PEPPER: must be 32 random bytes .*npm run -s keygen pepper.*PASSWORD_PEPPER_PREVIOUS/),
      ]);
    }
  });

  it("takes an older, shorter pepper as PASSWORD_PEPPER_PREVIOUS (16 characters or more)", () => {
    expect(problems({ PASSWORD_PEPPER_PREVIOUS: "an-old-short-pep" })).toEqual([]);
    expect(problems({ PASSWORD_PEPPER_PREVIOUS: "too-short-15chr" })).toEqual([expect.stringMatching(/^PASSWORD_PEPPER_PREVIOUS: /)]);
  });

  it("refuses a short pepper at start: 500 internal_error, the reason and the keygen in the log only", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await call("POST", "/login", {
      body: { username: "someone", password: "x1234567" },
      bindings: { PASSWORD_PEPPER: "test-pepper-0123456789abcdef" },
    });
    expectError(res, 500, "internal_error");
    expect(res.text).not.toMatch(/PEPPER|keygen/);
    const line = logged.mock.calls.map((c) => String(c[0])).find((l) => l.includes("config_invalid"));
    expect(line).toMatch(/PASSWORD_PEPPER: must be 32 random bytes.*npm run -s keygen pepper/);
  });
});
