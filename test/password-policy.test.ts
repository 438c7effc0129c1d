import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { COMMON_PASSWORDS } from "../src/auth/core/common-passwords-list";
import { isCommonPassword } from "../src/auth/core/password-policy";
import { breachCount } from "../src/auth/core/pwned-passwords";
import { call, expectError, login, mailbox, PASSWORD, registerUser, uniqueName } from "./helpers";

/**
 * The password policy (docs/passwords.md, ASVS 6.1.2, 6.2.4-6.2.12): length alone, no composition
 * rules; not one of the shipped most common passwords; none of the account's or the service's own
 * words; not breached (the range stand-in of scripts/stand-ins.mjs, in "refuse" mode suite-wide).
 * At sign-up, change and reset; a login never runs it.
 */

afterEach(() => vi.restoreAllMocks());

const STAND_INS = env.TEST_STAND_INS;
const pwned = (tag: string) => `${STAND_INS}/pwned/${tag}/range/`;
const received = async (tag: string) => (await fetch(`${STAND_INS}/pwned-log/${tag}`)).json<{ path: string; padding: boolean }[]>();
const BREACHED = "Tr0ub4dor&3"; // scripts/stand-ins.mjs BREACHED_PASSWORDS
const register = (body: Record<string, unknown>, bindings?: Partial<Env>) => call("POST", "/register", { body: { username: uniqueName(), ...body }, bindings });
const change = (token: string, new_password: string, current_password = PASSWORD, bindings?: Partial<Env>) =>
  call("POST", "/password", { token, body: { current_password, new_password }, bindings });

/** A reset link for a new account with an address. */
async function resetToken() {
  const box = mailbox();
  const email = `${uniqueName("reset")}@example.com`;
  const reg = await registerUser({ email });
  await box.send("POST", "/password/forgot", { body: { email } });
  return { reg, token: box.link(email, "reset-password") };
}

/** The JSON lines logged at `level` while `run` runs. */
async function logged(level: "warn" | "error", run: () => Promise<unknown>) {
  const lines: Record<string, unknown>[] = [];
  vi.spyOn(console, level).mockImplementation((line: unknown) => {
    try {
      lines.push(JSON.parse(String(line)));
    } catch {
      // not one of ours
    }
  });
  await run();
  return lines;
}

// First in the file: this file's database is fresh (test/setup.ts migrates it) until the tests below sign up.
describe("a fresh database (6.3.2)", () => {
  it("has no user and no admin after the migrations, and no migration inserts one", async () => {
    expect((await env.DB.prepare("SELECT count(*) AS n FROM users").first<{ n: number }>())!.n).toBe(0);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM users WHERE roles LIKE '%admin%'").first<{ n: number }>())!.n).toBe(0);
    const statements = env.TEST_MIGRATIONS.flatMap((m) => m.queries);
    expect(statements.length).toBeGreaterThan(10);
    expect(statements.filter((q) => /insert\s+into\s+[`"]?users\b/i.test(q))).toEqual([]);
  });
});

describe("the most common passwords (6.2.4, 6.1.2)", () => {
  it("ships at least 3,000 of them, all of 8 characters or more, compared without case", () => {
    const list = COMMON_PASSWORDS.split("\n");
    expect(list.length).toBeGreaterThanOrEqual(3_000);
    expect(new Set(list).size).toBe(list.length);
    expect(list.filter((p) => [...p].length < 8 || [...p].length > 128 || p !== p.normalize("NFC").toLowerCase())).toEqual([]);
    for (const p of ["password", "PASSWORD", "Qwertyuiop", "iloveyou", "sunshine", "football"]) expect(isCommonPassword(p), p).toBe(true);
    expect(isCommonPassword("purple dinosaur anvil")).toBe(false);
  });

  it("refuses one at sign-up, change and reset with password_too_common, and writes nothing", async () => {
    const username = uniqueName();
    expectError(await register({ username, password: "Baseball" }), 400, "password_too_common");
    expect(await env.DB.prepare("SELECT id FROM users WHERE username = ?").bind(username).first()).toBeNull();
    const reg = await registerUser();
    expectError(await change(reg.access_token, "Superman"), 400, "password_too_common");
    expect((await login(reg.input.username)).status).toBe(200); // the old password stands
    const { token } = await resetToken();
    expectError(await call("POST", "/password/reset", { body: { token, new_password: "qwertyuiop" } }), 400, "password_too_common");
    // The refusal spent nothing: the same link sets an acceptable password.
    expect((await call("POST", "/password/reset", { body: { token, new_password: "a much better secret" } })).status).toBe(200);
  });
});

describe("the account's and the service's words (6.2.11)", () => {
  it("refuses the username, the address's local part, the whole address and the service's words, whatever their case", async () => {
    const username = uniqueName("ctx");
    expectError(await register({ username, password: `my ${username.toUpperCase()} pw` }), 400, "password_contains_context");
    expectError(await register({ email: "jonathan.q@example.com", password: "JonathanQ-rules" }), 400, "password_contains_context");
    expectError(await register({ email: "jo@example.com", password: "i am jo@example.com" }), 400, "password_contains_context");
    for (const password of ["my Edge Auth secret", "edge-auth forever", "EdgeAuth 2026!", "super admin pass"]) {
      expectError(await register({ password }), 400, "password_contains_context");
    }
    // PASSWORD_CONTEXT_WORDS adds the deployment's own (a codename, the company).
    expectError(await register({ password: "bluefalcon rocks" }, { PASSWORD_CONTEXT_WORDS: "acme, bluefalcon" }), 400, "password_contains_context");
    expect((await register({ password: "bluefalcon rocks" })).status).toBe(201);
  });

  it("refuses them at a change and a reset too", async () => {
    const reg = await registerUser();
    expectError(await change(reg.access_token, `${reg.input.username}-2026`), 400, "password_contains_context");
    const { token, reg: owner } = await resetToken();
    const local = owner.user.email!.split("@")[0]!;
    expectError(await call("POST", "/password/reset", { body: { token, new_password: `x ${local} y` } }), 400, "password_contains_context");
  });
});

describe("no composition rules, long passwords (6.2.5, 6.2.9)", () => {
  it("accepts a password without digits, one of digits only, and any Unicode", async () => {
    for (const password of ["nodigitshere", "90817263544", "пароль без цифр", "🔑🔑 emoji keys 🔑🔑"]) {
      const res = await register({ password });
      expect(res.status, `${password}: ${res.text}`).toBe(201);
    }
  });

  it("accepts 64 and 128 characters at sign-up, login and change; refuses 129", async () => {
    const p64 = "long passphrase ".repeat(4);
    const p128 = "another long one".repeat(8);
    expect([p64.length, p128.length]).toEqual([64, 128]);
    const reg = await registerUser({ password: p64 });
    expect((await login(reg.input.username, p64)).status).toBe(200);
    const changed = await change(reg.access_token, p128, p64);
    expect(changed.status, changed.text).toBe(200);
    expect((await login(reg.input.username, p128)).status).toBe(200);
    expectError(await change((await login(reg.input.username, p128)).body.access_token, `${p128}x`, p128), 400, "validation_failed");
  });
});

describe("no periodic change (6.2.10)", () => {
  it("a password set a year ago still signs in, with nothing asked of it", async () => {
    const reg = await registerUser();
    const yearAgo = Date.now() - 366 * 86_400_000;
    await env.DB.prepare("UPDATE users SET created_at = ?, updated_at = ?, password_set_at = ? WHERE id = ?")
      .bind(yearAgo, yearAgo, yearAgo, reg.user.id)
      .run();
    const res = await login(reg.input.username);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["access_token", "expires_in", "refresh_token", "token_type", "user"]);
  });
});

describe("breached passwords by k-anonymity (6.2.12)", () => {
  it("refuses a breached password at sign-up, change and reset (refuse mode, the range stand-in)", async () => {
    expectError(await register({ password: BREACHED }), 400, "password_breached");
    const reg = await registerUser();
    expectError(await change(reg.access_token, "correct horse battery staple"), 400, "password_breached");
    const { token } = await resetToken();
    expectError(await call("POST", "/password/reset", { body: { token, new_password: "breached test password" } }), 400, "password_breached");
  });

  it("in warn mode accepts it and says so in password_warning; a clean password has no warning", async () => {
    const warn = { PWNED_PASSWORDS: "warn" } as Partial<Env>;
    const reg = await register({ password: BREACHED }, warn);
    expect(reg.status, reg.text).toBe(201);
    expect(reg.body.password_warning).toBe("password_breached");
    const changed = await change(reg.body.access_token, "pwned-but-long-enough", BREACHED, warn);
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body.password_warning).toBe("password_breached");
    const clean = await register({ password: "an unbreached secret" }, warn);
    expect(clean.status).toBe(201);
    expect(clean.body).not.toHaveProperty("password_warning");
    const { token } = await resetToken();
    const reset = await call("POST", "/password/reset", { body: { token, new_password: BREACHED }, bindings: warn });
    expect(reset.status, reset.text).toBe(200);
    expect(reset.body.password_warning).toBe("password_breached");
  });

  it("sends only the first five hex characters of the SHA-1, with Add-Padding: true", async () => {
    const tag = `k-anon-${crypto.randomUUID()}`;
    expectError(await register({ password: BREACHED }, { PWNED_PASSWORDS_URL: pwned(tag) }), 400, "password_breached");
    // Only the first five characters of the hash leave, once, padded.
    const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(BREACHED));
    const hex = [...new Uint8Array(digest)]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("")
      .toUpperCase();
    expect(await received(tag)).toEqual([{ path: `/pwned/${tag}/range/${hex.slice(0, 5)}`, padding: true }]);
  });

  it("reads the padding's count-0 lines as absent", async () => {
    // The stand-in lists this password's suffix only as a padding line (count 0): it was never breached.
    const config = { PWNED_PASSWORDS_URL: pwned("count"), PWNED_PASSWORDS_TIMEOUT_MS: 1500 };
    expect(await breachCount(config, BREACHED)).toBe(31_572);
    expect(await breachCount(config, "only in the padding")).toBe(0);
    expect(await breachCount(config, "an unbreached secret")).toBe(0);
    expect((await register({ password: "only in the padding" })).status).toBe(201);
  });

  it("never queries the range API when off, nor for a password the local checks refuse", async () => {
    const tag = `off-${crypto.randomUUID()}`;
    expect((await register({ password: BREACHED }, { PWNED_PASSWORDS: "off", PWNED_PASSWORDS_URL: pwned(tag) } as Partial<Env>)).status).toBe(201);
    expectError(await register({ password: "Football" }, { PWNED_PASSWORDS_URL: pwned(tag) }), 400, "password_too_common");
    expect(await received(tag)).toEqual([]);
  });

  it.each([
    ["down (500)", "down", "status 500"],
    ["slow (past the timeout)", "slow", "TimeoutError"],
    ["answering without a range", "empty", "no range in the answer"],
  ])("accepts the password when the range API is %s (fails open) and logs pwned_check_failed without the password", async (_what, tag, reason) => {
    const bindings = { PWNED_PASSWORDS_URL: pwned(`${tag}-${crypto.randomUUID()}`), PWNED_PASSWORDS_TIMEOUT_MS: "200" } as unknown as Partial<Env>;
    let res: Awaited<ReturnType<typeof register>> | undefined;
    const started = Date.now();
    const lines = await logged("warn", async () => {
      res = await register({ password: BREACHED }, bindings);
    });
    expect(res?.status, res?.text).toBe(201);
    expect(Date.now() - started).toBeLessThan(2_000);
    const line = lines.find((l) => l.event === "pwned_check_failed");
    expect(line).toMatchObject({ level: "warn", event: "pwned_check_failed", reason });
    expect(JSON.stringify(lines)).not.toContain(BREACHED);
  });
});
