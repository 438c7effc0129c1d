import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { open, seal } from "../src/auth/core/secrets";
import { fromBase32, otpauthUri, toBase32, totpCode, verifyTotp } from "../src/auth/core/totp";
import {
  awayFromStepEdge,
  type CallOptions,
  call,
  codeAt,
  d1BatchAnswerLostAt,
  d1WriteBeforeBatch,
  expectError,
  login,
  mailbox,
  PASSWORD,
  registerUser,
  stepUpFailures,
  userWithTotp,
  wrongCode,
} from "./helpers";

/**
 * TOTP (RFC 6238) with recovery codes: the code module against the RFC's vectors, then the HTTP
 * flows: setup, enable, the login's second step, replayed and used codes, the lock, disable.
 */

afterEach(() => vi.restoreAllMocks());

const KEY = env.MFA_ENCRYPTION_KEY;

async function challengeFor(username: string, opts: CallOptions = {}) {
  const res = await call("POST", "/login", { ...opts, body: { username, password: PASSWORD } });
  expect(res.status, res.text).toBe(200);
  expect(res.body).toMatchObject({ mfa_required: true, methods: ["totp", "recovery_code"], expires_in: 300 });
  expect(res.body.access_token).toBeUndefined();
  return res.body.challenge as string;
}
const secondStep = (challenge: string, proof: { code?: string; recovery_code?: string }, opts: CallOptions = {}) =>
  call("POST", "/login/mfa", { ...opts, body: { challenge, ...proof } });
const userRow = (id: string) =>
  env.DB.prepare("SELECT totp_secret, totp_enabled_at, totp_last_step, recovery_codes, failed_logins FROM users WHERE id = ?")
    .bind(id)
    .first<Record<string, string | number | null>>();

describe("TOTP codes (RFC 6238)", () => {
  // RFC 6238 appendix B, SHA-1, the secret "12345678901234567890", truncated to 6 digits.
  const rfcSecret = new TextEncoder().encode("12345678901234567890");

  it("match the RFC's test vectors", async () => {
    expect(await totpCode(rfcSecret, new Date(59_000))).toBe("287082");
    expect(await totpCode(rfcSecret, new Date(1_111_111_109_000))).toBe("081804");
    expect(await totpCode(rfcSecret, new Date(1_234_567_890_000))).toBe("005924");
    expect(await totpCode(rfcSecret, new Date(20_000_000_000_000))).toBe("353130");
  });

  it("accept ±1 step of skew, nothing further, and only steps after the last accepted one", async () => {
    const now = new Date(1_234_567_890_000);
    const step = Math.floor(now.getTime() / 30_000);
    const at = (n: number) => totpCode(rfcSecret, new Date(now.getTime() + n * 30_000));
    expect(await verifyTotp(rfcSecret, await at(-1), now)).toBe(step - 1);
    expect(await verifyTotp(rfcSecret, await at(0), now)).toBe(step);
    expect(await verifyTotp(rfcSecret, await at(1), now)).toBe(step + 1);
    expect(await verifyTotp(rfcSecret, await at(-2), now)).toBeNull();
    expect(await verifyTotp(rfcSecret, await at(2), now)).toBeNull();
    expect(await verifyTotp(rfcSecret, await at(0), now, step)).toBeNull(); // used already
    expect(await verifyTotp(rfcSecret, await at(-1), now, step)).toBeNull(); // older than the last used
    expect(await verifyTotp(rfcSecret, "12345", now)).toBeNull();
    expect(await verifyTotp(rfcSecret, "abcdef", now)).toBeNull();
  });

  it("round-trip base32 and build the otpauth URI apps read", () => {
    const secret = crypto.getRandomValues(new Uint8Array(20));
    expect(fromBase32(toBase32(secret))).toEqual(secret);
    expect(toBase32(new TextEncoder().encode("foobar"))).toBe("MZXW6YTBOI"); // RFC 4648 section 10
    const uri = new URL(otpauthUri("Edge Auth", "alice", secret));
    expect(uri.protocol).toBe("otpauth:");
    expect(uri.host).toBe("totp");
    expect(decodeURIComponent(uri.pathname)).toBe("/Edge Auth:alice");
    expect(Object.fromEntries(uri.searchParams)).toEqual({ secret: toBase32(secret), issuer: "Edge Auth", algorithm: "SHA1", digits: "6", period: "30" });
  });
});

describe("secrets at rest", () => {
  it("open only for the user they were sealed for, and not after tampering", async () => {
    const plain = crypto.getRandomValues(new Uint8Array(20));
    const sealed = await seal(KEY, "user-a", plain);
    expect(sealed).toMatch(/^v2\.[A-Za-z0-9_-]{8}\./);
    expect(await open({ MFA_ENCRYPTION_KEY: KEY }, "user-a", sealed)).toEqual(plain);
    await expect(open({ MFA_ENCRYPTION_KEY: KEY }, "user-b", sealed)).rejects.toThrow();
    const body = sealed.split(".").at(-1)!;
    const flipped = body.slice(0, -2) + (body.at(-2) === "A" ? "B" : "A") + body.at(-1);
    await expect(open({ MFA_ENCRYPTION_KEY: KEY }, "user-a", `${sealed.slice(0, -body.length)}${flipped}`)).rejects.toThrow();
  });
});

describe("setting TOTP up", () => {
  it("stores the secret sealed and the recovery codes hashed; GET /me shows the factor, never a secret", async () => {
    const box = mailbox();
    const email = `totp_${Date.now()}@example.com`;
    const reg = await registerUser({ email });
    const setup = await box.send("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(setup.body.otpauth_uri).toContain(`secret=${setup.body.secret}`);
    expect((await call("GET", "/me", { token: reg.access_token })).body.factors).toEqual({ totp: false, recovery_codes_left: 0, passkeys: 0 }); // pending only

    await awayFromStepEdge();
    const enabled = await box.send("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(setup.body.secret) } });
    expect(enabled.status, enabled.text).toBe(200);
    const codes: string[] = enabled.body.recovery_codes;
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){5}$/);

    const row = (await userRow(reg.user.id))!;
    expect(String(row.totp_secret)).toMatch(/^v2\.[A-Za-z0-9_-]{8}\./);
    expect(String(row.totp_secret)).not.toContain(setup.body.secret);
    const stored = JSON.parse(String(row.recovery_codes)) as string[];
    expect(stored).toHaveLength(10);
    for (const c of codes) expect(String(row.recovery_codes)).not.toContain(c.replace(/-/g, ""));

    const me = await call("GET", "/me", { token: reg.access_token });
    expect(me.body.factors).toEqual({ totp: true, recovery_codes_left: 10, passkeys: 0 });
    expect(me.text).not.toContain(setup.body.secret);
    // The owner is told, by mail.
    expect(box.sent.at(-1)).toMatchObject({ to: email, subject: expect.stringMatching(/sign-in setting/i) });
    expect(box.sent.at(-1)!.text).toMatch(/turned on/);
  });

  it("a password reset ends a pending setup with the session it recorded: no later code enables it", async () => {
    const box = mailbox();
    const email = `pending_${Date.now()}@example.com`;
    const reg = await registerUser({ email });
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    expect(setup.status).toBe(200);
    const pending = await env.DB.prepare("SELECT totp_enabled_by FROM users WHERE id = ?").bind(reg.user.id).first();
    expect(pending?.totp_enabled_by).toEqual(expect.any(String)); // the session that set it up
    await box.send("POST", "/password/forgot", { body: { email } });
    const reset = await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "after the reset 9" } });
    expect(reset.status).toBe(200);
    const row = await env.DB.prepare("SELECT totp_secret, totp_enabled_at, totp_enabled_by FROM users WHERE id = ?").bind(reg.user.id).first();
    expect(row).toEqual({ totp_secret: null, totp_enabled_at: null, totp_enabled_by: null });
  });

  it("setup takes the password; a wrong one counts against the session's own budget, never the account lock", async () => {
    const reg = await registerUser();
    expectError(await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: "wrong password 1" } }), 401, "invalid_credentials");
    expectError(await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: {} }), 400, "validation_failed");
    expect((await userRow(reg.user.id))!).toMatchObject({ failed_logins: 0, totp_secret: null });
    expect(await stepUpFailures(reg.access_token)).toBe(1);
  });

  it("refuses a wrong code, a code of a replaced secret, a second setup while on, and enable before setup", async () => {
    const reg = await registerUser();
    expectError(await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: "123456" } }), 409, "mfa_not_enabled");
    const first = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    const second = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    expect(second.body.secret).not.toBe(first.body.secret);
    await awayFromStepEdge();
    expectError(await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(first.body.secret) } }), 401, "invalid_mfa_code");
    expectError(await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: "12345" } }), 400, "validation_failed");
    expect((await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(second.body.secret) } })).status).toBe(200);
    expectError(await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } }), 409, "mfa_already_enabled");
    await env.DB.prepare("UPDATE users SET totp_enabled_at = ? WHERE id = ?")
      .bind(Date.now() - 11_000, reg.user.id)
      .run(); // past the retry grace
    expectError(
      await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(second.body.secret) } }),
      409,
      "mfa_already_enabled",
    );
    expectError(await call("POST", "/mfa/totp/setup"), 401, "invalid_token");
  });

  it("an enable sent twice at once, or again after its answer was lost, shows the same recovery codes", async () => {
    const reg = await registerUser();
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    const code = await codeAt(setup.body.secret);
    const both = await Promise.all([0, 1].map(() => call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code } })));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both[1]!.body.recovery_codes).toEqual(both[0]!.body.recovery_codes);
    const challenge = await challengeFor(reg.input.username);
    expect((await secondStep(challenge, { recovery_code: both[0]!.body.recovery_codes[0] })).status).toBe(200);
    // Once a code has been used, or the grace (RETRY_GRACE) is over, they are not shown again.
    expectError(await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code } }), 409, "mfa_already_enabled");
  });

  it("an enable whose answer was lost: the retry gets the codes that were stored", async () => {
    const reg = await registerUser();
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    const code = await codeAt(setup.body.secret);
    const DB = d1BatchAnswerLostAt(2); // after the step-up's start: the batch that turns TOTP on, with its audit row
    expectError(await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code }, bindings: { DB } }), 500, "internal_error");
    expect((await userRow(reg.user.id))!.totp_enabled_at).not.toBeNull(); // it was written
    const retry = await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code } });
    expect(retry.status, retry.text).toBe(200);
    // Within the grace a wrong code is a guess: it counts against the session's budget.
    expectError(
      await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await wrongCode(setup.body.secret) } }),
      401,
      "invalid_mfa_code",
    );
    expect(await stepUpFailures(reg.access_token)).toBe(1);
    expect((await userRow(reg.user.id))!.failed_logins).toBe(0);
    const challenge = await challengeFor(reg.input.username);
    expect((await secondStep(challenge, { recovery_code: retry.body.recovery_codes[9] })).status).toBe(200);
    // Too late: the grace is over.
    await env.DB.prepare("UPDATE users SET totp_enabled_at = ? WHERE id = ?")
      .bind(Date.now() - 11_000, reg.user.id)
      .run();
    expectError(await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code } }), 409, "mfa_already_enabled");
  });

  it("without MFA_ENCRYPTION_KEY answers 500 internal_error and says why in the log only", async () => {
    const reg = await registerUser();
    const res = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD }, bindings: { MFA_ENCRYPTION_KEY: "" } });
    expectError(res, 500, "internal_error");
    expect(res.text).not.toContain("MFA_ENCRYPTION_KEY");
  });
});

describe("signing in with TOTP on", () => {
  it("a right password answers a challenge, not tokens; the code completes the sign-in", async () => {
    const u = await userWithTotp();
    const challenge = await challengeFor(u.input.username);
    await awayFromStepEdge();
    const done = await secondStep(challenge, { code: await codeAt(u.secret) });
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ user: { id: u.user.id }, token_type: "Bearer", refresh_token: expect.any(String) });
    expect((await call("GET", "/protected", { token: done.body.access_token })).status).toBe(200);
    // A wrong password is still the plain 401: nothing tells that TOTP is on.
    const wrong = await login(u.input.username, "wrong password 1");
    expectError(wrong, 401, "invalid_credentials");
  });

  it("a code is good once: the same code with a new challenge, and an older code of the window, are refused", async () => {
    const u = await userWithTotp();
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    expect((await secondStep(await challengeFor(u.input.username), { code })).status).toBe(200);
    expectError(await secondStep(await challengeFor(u.input.username), { code }), 401, "invalid_mfa_code");
    expectError(await secondStep(await challengeFor(u.input.username), { code: await codeAt(u.secret, -1) }), 401, "invalid_mfa_code");
    // The next step's code (clock skew) is still good.
    expect((await secondStep(await challengeFor(u.input.username), { code: await codeAt(u.secret, 1) })).status).toBe(200);
  });

  it("the code that just turned TOTP on is 'just used' at sign-in and step-up: told so, no attempt counted; the next code signs in", async () => {
    const reg = await registerUser();
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    const enabling = await codeAt(setup.body.secret);
    expect((await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: enabling } })).status).toBe(200);
    const challenge = await challengeFor(reg.input.username);
    // Six times: past the challenge's five wrong codes and the lock's threshold, and each releases its
    // check (unreleased checks in flight would be refused with 429 from the sixth on).
    for (let i = 0; i < 6; i++) {
      const again = await secondStep(challenge, { code: enabling });
      expectError(again, 401, "invalid_mfa_code");
      expect(again.body.message).toBe("That code can't be used again: wait for the next code from your app");
    }
    const lines: string[] = [];
    for (const level of ["log", "info", "warn"] as const) vi.spyOn(console, level).mockImplementation((line: string) => void lines.push(line));
    const stepUp = await call("POST", "/password", {
      token: reg.access_token,
      body: { current_password: PASSWORD, new_password: "brand new secret 7", code: enabling },
    });
    vi.restoreAllMocks();
    // Logged (a replayed code shows), without the code.
    expect(lines.map((l) => JSON.parse(l)).filter((l) => l.event === "mfa_code_reused")).toEqual([
      expect.objectContaining({ user_id: reg.user.id, at: "step_up" }),
    ]);
    expect(lines.join("\n")).not.toContain(`"${enabling}"`);
    expectError(stepUp, 401, "invalid_mfa_code");
    expect(stepUp.body.message).toMatch(/can't be used again/);
    expect(await stepUpFailures(reg.access_token)).toBe(0);
    expect((await userRow(reg.user.id))!.failed_logins).toBe(0);
    const failed = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event IN ('mfa_failed', 'step_up_failed')")
      .bind(reg.user.id)
      .first<{ n: number }>();
    expect(failed!.n).toBe(0);
    // The same challenge takes the next step's code; a wrong code still counts.
    expect((await secondStep(challenge, { code: await codeAt(setup.body.secret, 1) })).status).toBe(200);
    expectError(await secondStep(await challengeFor(reg.input.username), { code: await wrongCode(setup.body.secret) }), 401, "invalid_mfa_code");
    expect((await userRow(reg.user.id))!.failed_logins).toBe(1);
  });

  it("a challenge is good once, is refused once expired, and dies with a password change", async () => {
    const u = await userWithTotp();
    await awayFromStepEdge();
    const challenge = await challengeFor(u.input.username);
    expect((await secondStep(challenge, { code: await codeAt(u.secret) })).status).toBe(200);
    expectError(await secondStep(challenge, { code: await codeAt(u.secret, 1) }), 401, "invalid_challenge");

    const expired = await challengeFor(u.input.username);
    await env.DB.prepare("UPDATE challenges SET expires_at = ? WHERE user_id = ? AND used_at IS NULL")
      .bind(Date.now() - 1, u.user.id)
      .run();
    expectError(await secondStep(expired, { code: await codeAt(u.secret, 1) }), 401, "invalid_challenge");

    const stale = await challengeFor(u.input.username);
    const change = await call("POST", "/password", {
      token: u.access_token,
      body: { current_password: PASSWORD, new_password: "battery staple 43", recovery_code: u.recoveryCodes[0] },
    });
    expect(change.status, change.text).toBe(200);
    expectError(await secondStep(stale, { code: await codeAt(u.secret, 1) }), 401, "invalid_challenge");
    expectError(await secondStep("not-a-challenge", { code: "123456" }), 401, "invalid_challenge");
  });

  it("a recovery code signs in once, in any case and without dashes; the owner is told", async () => {
    const box = mailbox();
    const email = `rc_${Date.now()}@example.com`;
    const u = await userWithTotp(email);
    const [first, second] = u.recoveryCodes;
    const done = await box.send("POST", "/login/mfa", { body: { challenge: await challengeFor(u.input.username), recovery_code: first } });
    expect(done.status, done.text).toBe(200);
    expect(box.sent.at(-1)).toMatchObject({ to: email });
    expect(box.sent.at(-1)!.text).toMatch(/recovery code .* \(9 left\)/);
    expectError(await secondStep(await challengeFor(u.input.username), { recovery_code: first }), 401, "invalid_mfa_code");
    const typed = second!.replace(/-/g, "").toUpperCase();
    expect((await secondStep(await challengeFor(u.input.username), { recovery_code: typed })).status).toBe(200);
    expect((await call("GET", "/me", { token: done.body.access_token })).body.factors.recovery_codes_left).toBe(8);
    const audit = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event = 'recovery_code_used'")
      .bind(u.user.id)
      .first<{ n: number }>();
    expect(audit!.n).toBe(2);
  });

  // Each race with its own user: the per-account limit (10 a minute) covers the second step too.
  const exactlyOne = (results: { status: number }[]) => expect(results.map((r) => r.status).sort()).toEqual([200, 401]);
  const sessionsOf = async (userId: string) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;

  it("two challenges sent with one code at once: exactly one signs in", async () => {
    const u = await userWithTotp();
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    const [a, b] = [await challengeFor(u.input.username), await challengeFor(u.input.username)];
    exactlyOne(await Promise.all([secondStep(a, { code }), secondStep(b, { code })]));
    expect(await sessionsOf(u.user.id)).toBe(2); // registration, and the winner
  });

  it("two challenges sent with one recovery code at once: exactly one signs in", async () => {
    const u = await userWithTotp();
    const [a, b] = [await challengeFor(u.input.username), await challengeFor(u.input.username)];
    const recovery_code = u.recoveryCodes[3]!;
    exactlyOne(await Promise.all([secondStep(a, { recovery_code }), secondStep(b, { recovery_code })]));
    expect(await sessionsOf(u.user.id)).toBe(2);
  });

  it("one challenge sent twice at once: exactly one signs in", async () => {
    const u = await userWithTotp();
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    const challenge = await challengeFor(u.input.username);
    exactlyOne(await Promise.all([secondStep(challenge, { code }), secondStep(challenge, { code })]));
    expect(await sessionsOf(u.user.id)).toBe(2);
  });

  it("a code spent by another request between this one's check and its write opens no session", async () => {
    const u = await userWithTotp();
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    const challenge = await challengeFor(u.input.username);
    const step = Math.floor(Date.now() / 30_000);
    // Batch 1 starts the check; the other request's use of the code lands just before batch 2.
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET totp_last_step = ? WHERE id = ?", step, u.user.id);
    expectError(await secondStep(challenge, { code }, { bindings: { DB } }), 401, "invalid_mfa_code");
    expect(await sessionsOf(u.user.id)).toBe(1);
    // The challenge was not used up: the next code completes it.
    expect((await secondStep(challenge, { code: await codeAt(u.secret, 1) })).status).toBe(200);
  });

  it("a second step refused at its last moment (the account disabled meanwhile) leaves the recovery code unspent", async () => {
    const u = await userWithTotp();
    const challenge = await challengeFor(u.input.username);
    // Batch 1 starts the check; the account is disabled just before batch 2, which would open the session.
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET disabled_at = ? WHERE id = ?", Date.now(), u.user.id);
    expectError(await secondStep(challenge, { recovery_code: u.recoveryCodes[0] }, { bindings: { DB } }), 403, "account_disabled");
    expect(JSON.parse(String((await userRow(u.user.id))!.recovery_codes))).toHaveLength(10);
    await env.DB.prepare("UPDATE users SET disabled_at = NULL WHERE id = ?").bind(u.user.id).run();
    expect((await secondStep(await challengeFor(u.input.username), { recovery_code: u.recoveryCodes[0] })).status).toBe(200);
  });

  it("a second step whose answer was lost: the same client's retry gets that session, nobody else's does", async () => {
    const u = await userWithTotp();
    const client = { headers: { "cf-connecting-ip": "10.77.0.1", "user-agent": "Retrying/1.0" } };
    const challenge = await challengeFor(u.input.username);
    // Batch 1 starts the check, batch 2 opens the session: its answer is lost.
    const lost = await secondStep(challenge, { recovery_code: u.recoveryCodes[0] }, { ...client, bindings: { DB: d1BatchAnswerLostAt(2) } });
    expectError(lost, 500, "internal_error");
    expectError(
      await secondStep(challenge, { recovery_code: u.recoveryCodes[0] }, { headers: { ...client.headers, "cf-connecting-ip": "10.77.0.2" } }),
      401,
      "invalid_challenge",
    );
    const retry = await secondStep(challenge, { recovery_code: u.recoveryCodes[0] }, client);
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body.user.id).toBe(u.user.id);
    expect(await sessionsOf(u.user.id)).toBe(2); // registration, and the one sign-in: no second session
    // The recovery code was spent once, by the lost request.
    expect((await call("GET", "/me", { token: retry.body.access_token })).body.factors.recovery_codes_left).toBe(9);
    // Once the session has been refreshed, the old answer is stale: no retry.
    expect((await call("POST", "/refresh", { body: { refresh_token: retry.body.refresh_token } })).status).toBe(200);
    expectError(await secondStep(challenge, { recovery_code: u.recoveryCodes[0] }, client), 401, "invalid_challenge");
  });

  it("a retry after the grace (RETRY_GRACE) is refused", async () => {
    const u = await userWithTotp();
    const client = { headers: { "cf-connecting-ip": "10.77.0.3", "user-agent": "Retrying/1.0" } };
    const challenge = await challengeFor(u.input.username);
    expectError(
      await secondStep(challenge, { recovery_code: u.recoveryCodes[1] }, { ...client, bindings: { DB: d1BatchAnswerLostAt(2) } }),
      500,
      "internal_error",
    );
    await env.DB.prepare("UPDATE challenges SET used_at = ? WHERE user_id = ? AND used_at IS NOT NULL")
      .bind(Date.now() - 11_000, u.user.id)
      .run();
    expectError(await secondStep(challenge, { recovery_code: u.recoveryCodes[1] }, client), 401, "invalid_challenge");
  });

  it("wrong codes count toward the account lock, and a right password alone does not clear them", async () => {
    const u = await userWithTotp();
    const first = await challengeFor(u.input.username);
    for (let i = 0; i < 3; i++) expectError(await secondStep(first, { code: await wrongCode(u.secret) }), 401, "invalid_mfa_code");
    expect((await userRow(u.user.id))!.failed_logins).toBe(3);
    const again = await challengeFor(u.input.username); // the right password
    expect((await userRow(u.user.id))!.failed_logins).toBe(3);
    expectError(await secondStep(again, { recovery_code: "aaaa-bbbb-cccc-dddd" }), 401, "invalid_mfa_code");
    expectError(await secondStep(again, { code: await wrongCode(u.secret) }), 401, "invalid_mfa_code"); // the fifth: locked
    const locked = await secondStep(again, { code: await codeAt(u.secret) });
    expectError(locked, 429, "rate_limited");
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0);
    expectError(await login(u.input.username), 429, "rate_limited");
    const events = await env.DB.prepare("SELECT event FROM audit_events WHERE user_id = ? AND event IN ('mfa_failed', 'account_locked')")
      .bind(u.user.id)
      .all<{ event: string }>();
    expect(events.results.filter((e) => e.event === "mfa_failed")).toHaveLength(5);
    expect(events.results.some((e) => e.event === "account_locked")).toBe(true);
  });

  it("five wrong codes end a challenge (the password is asked again), and a full sign-in clears the count", async () => {
    const u = await userWithTotp();
    const lenient = { bindings: { LOGIN_LOCK_THRESHOLD: "50" } };
    const challenge = await challengeFor(u.input.username, lenient);
    await awayFromStepEdge();
    const right = await codeAt(u.secret);
    const wrong = await wrongCode(u.secret);
    for (let i = 0; i < 5; i++) expectError(await secondStep(challenge, { code: wrong }, lenient), 401, "invalid_mfa_code");
    expectError(await secondStep(challenge, { code: right }, lenient), 401, "invalid_challenge");
    expect((await secondStep(await challengeFor(u.input.username, lenient), { code: right }, lenient)).status).toBe(200);
    expect((await userRow(u.user.id))!.failed_logins).toBe(0);
  });

  it("a password login already checked when TOTP is turned on gets no session", async () => {
    const u = await userWithTotp();
    await call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, recovery_code: u.recoveryCodes[0] } });
    // The login's first batch sees TOTP off; TOTP is turned on just before its second.
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET totp_enabled_at = ?, totp_secret = 'x' WHERE id = ?", Date.now(), u.user.id);
    expectError(await call("POST", "/login", { body: { username: u.input.username, password: PASSWORD }, bindings: { DB } }), 401, "invalid_credentials");
    expect(await sessionsOf(u.user.id)).toBe(1);
  });

  it("cookie mode at the second step needs an allowed Origin", async () => {
    const u = await userWithTotp();
    const challenge = await challengeFor(u.input.username);
    const foreign = await call("POST", "/login/mfa", {
      body: { challenge, recovery_code: u.recoveryCodes[0], use_cookie: true },
      headers: { origin: "https://evil.example" },
    });
    expectError(foreign, 403, "forbidden");
    const res = await call("POST", "/login/mfa", {
      body: { challenge, recovery_code: u.recoveryCodes[0], use_cookie: true },
      headers: { origin: "http://localhost:5173" },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("set-cookie")).toMatch(/^refresh_token=.*HttpOnly/);
    expect(res.body.refresh_token).toBeUndefined();
  });

  it("a lock by wrong codes is mailed: someone knows the password", async () => {
    const box = mailbox();
    const email = `lock_${Date.now()}@example.com`;
    const u = await userWithTotp(email);
    const challenge = await challengeFor(u.input.username);
    for (let i = 0; i < 4; i++) expectError(await secondStep(challenge, { code: await wrongCode(u.secret) }), 401, "invalid_mfa_code");
    const locking = await box.send("POST", "/login/mfa", { body: { challenge, code: await wrongCode(u.secret) } });
    expectError(locking, 401, "invalid_mfa_code");
    expectError(await login(u.input.username), 429, "rate_limited");
    expect(box.sent.at(-1)).toMatchObject({ to: email });
    expect(box.sent.at(-1)!.text).toMatch(/knows your password entered wrong two-step codes/);
  });

  it("a signed-in session's step-ups neither count toward the account lock nor clear it", async () => {
    const u = await userWithTotp();
    const challenge = await challengeFor(u.input.username);
    for (let i = 0; i < 2; i++) expectError(await secondStep(challenge, { code: await wrongCode(u.secret) }), 401, "invalid_mfa_code");
    const change = await call("POST", "/email", {
      token: u.access_token,
      body: { new_email: `moved_${Date.now()}@example.com`, current_password: PASSWORD, recovery_code: u.recoveryCodes[0] },
    });
    expect(change.status, change.text).toBe(202);
    expectError(
      await call("POST", "/email", {
        token: u.access_token,
        body: { new_email: `moved2_${Date.now()}@example.com`, current_password: PASSWORD, code: await wrongCode(u.secret) },
      }),
      401,
      "invalid_mfa_code",
    );
    expect((await userRow(u.user.id))!.failed_logins).toBe(2);
    expect(await stepUpFailures(u.access_token)).toBe(1);
  });

  it("answers 400 for a body with both, or neither, of code and recovery_code", async () => {
    expectError(await call("POST", "/login/mfa", { body: { challenge: "x", code: "123456", recovery_code: "aaaa-bbbb-cccc-dddd" } }), 400, "validation_failed");
    const res = await call("POST", "/login/mfa", { body: { challenge: "x" } });
    expectError(res, 400, "validation_failed");
    expect(res.body.fields.code).toMatch(/one of them/);
  });
});

describe("a replaced MFA_ENCRYPTION_KEY", () => {
  it("fails codes loudly (500, logged), while recovery codes still sign in and turn TOTP off", async () => {
    const u = await userWithTotp();
    const other = { bindings: { MFA_ENCRYPTION_KEY: "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDE" } };
    const challenge = await challengeFor(u.input.username, other);
    const res = await secondStep(challenge, { code: await codeAt(u.secret) }, other);
    expectError(res, 500, "internal_error");
    expect(res.text).not.toMatch(/MFA_ENCRYPTION_KEY|secret/);
    const done = await secondStep(challenge, { recovery_code: u.recoveryCodes[0] }, other);
    expect(done.status, done.text).toBe(200);
    const off = await call("POST", "/mfa/totp/disable", {
      ...other,
      token: done.body.access_token,
      body: { current_password: PASSWORD, recovery_code: u.recoveryCodes[1] },
    });
    expect(off.status, off.text).toBe(200);
  });
});

describe("turning TOTP off", () => {
  it("needs the password and a code; wrong ones count against the session's budget; then login asks no code", async () => {
    const box = mailbox();
    const email = `off_${Date.now()}@example.com`;
    const u = await userWithTotp(email);
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    expectError(
      await call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: "wrong password 1", code } }),
      401,
      "invalid_credentials",
    );
    expectError(
      await call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, code: await wrongCode(u.secret) } }),
      401,
      "invalid_mfa_code",
    );
    expect(await stepUpFailures(u.access_token)).toBe(2);
    expect((await userRow(u.user.id))!.failed_logins).toBe(0);
    const off = await box.send("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, code } });
    expect(off.status, off.text).toBe(200);
    const audited = await env.DB.prepare("SELECT event, detail FROM audit_events WHERE user_id = ? AND event = 'totp_disabled'")
      .bind(u.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(audited!.detail)).toMatchObject({ method: "totp" });
    expect(box.sent.at(-1)!.text).toMatch(/turned off/);
    const row = (await userRow(u.user.id))!;
    expect(row).toMatchObject({ totp_secret: null, totp_enabled_at: null, recovery_codes: null, failed_logins: 0 });
    expect(await stepUpFailures(u.access_token)).toBe(0); // a passed check makes the budget whole
    const plain = await login(u.input.username);
    expect(plain.status).toBe(200);
    expect(plain.body.access_token).toEqual(expect.any(String));
    expectError(await call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, code } }), 409, "mfa_not_enabled");
  });

  it("a disable whose answer was lost: the retry answers 409 mfa_not_enabled, the state it asked for; both changes were audited", async () => {
    const u = await userWithTotp();
    const body = { current_password: PASSWORD, recovery_code: u.recoveryCodes[0] };
    // Batch 1 starts the check, batch 2 spends the code, batch 3 turns TOTP off: its answer is lost.
    expectError(await call("POST", "/mfa/totp/disable", { token: u.access_token, body, bindings: { DB: d1BatchAnswerLostAt(3) } }), 500, "internal_error");
    expect((await userRow(u.user.id))!).toMatchObject({ totp_enabled_at: null, recovery_codes: null });
    expectError(await call("POST", "/mfa/totp/disable", { token: u.access_token, body }), 409, "mfa_not_enabled");
    const events = await env.DB.prepare("SELECT event FROM audit_events WHERE user_id = ? AND event IN ('totp_enabled', 'totp_disabled') ORDER BY id")
      .bind(u.user.id)
      .all<{ event: string }>();
    // The audit rows commit with their changes, so a lost answer loses neither.
    expect(events.results.map((e) => e.event)).toEqual(["totp_enabled", "totp_disabled"]);
  });

  it("works with a recovery code (the authenticator is lost); a used recovery code or a used TOTP code is refused", async () => {
    const u = await userWithTotp();
    // Spend a recovery code and a TOTP code at sign-in first.
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    expect((await secondStep(await challengeFor(u.input.username), { code })).status).toBe(200);
    expect((await secondStep(await challengeFor(u.input.username), { recovery_code: u.recoveryCodes[8] })).status).toBe(200);
    expectError(await call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, code } }), 401, "invalid_mfa_code");
    expectError(
      await call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, recovery_code: u.recoveryCodes[8] } }),
      401,
      "invalid_mfa_code",
    );
    const body = { current_password: PASSWORD, recovery_code: u.recoveryCodes[9] };
    expect((await call("POST", "/mfa/totp/disable", { token: u.access_token, body })).status).toBe(200);
    expect((await call("GET", "/me", { token: u.access_token })).body.factors).toEqual({ totp: false, recovery_codes_left: 0, passkeys: 0 });
  });
});
