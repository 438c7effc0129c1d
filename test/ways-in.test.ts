import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { applyRecoveries } from "../src/cron";
import { SoftAuthenticator } from "./authenticator";
import {
  awayFromStepEdge,
  call,
  codeAt,
  d1WriteBeforeBatch,
  decodeJwtPart,
  expectError,
  login,
  mailbox,
  ORIGIN,
  PASSWORD,
  refreshWith,
  registerOptions,
  registerUser,
  sidOf,
  stepUpFailures,
  uniqueName,
  userWithTotp,
  wrongCode,
} from "./helpers";

/**
 * One model for every way into an account (auth/core/ways-in.ts): the ways in listed with when and by
 * which session each was added; how each session was proved (amr, auth_time); step-up in one table,
 * on the session's own budget; recovery by mail that takes the account back; and "this was not me"
 * links that remove what a notice announced. Each finding of issue 17 has its test here or beside
 * the flow it touches.
 */

const NEW_PASSWORD = "battery staple 43";
const MINUTE = 60_000;
const DAY = 86_400_000;
/** The cron's run at `at` (ms): applies held recoveries that are due then, mailing through `EMAIL`. */
const applyHoldsAt = (at: number, EMAIL?: SendEmail) => applyRecoveries(EMAIL ? { ...env, EMAIL } : env, new Date(at));
const address = () => `${uniqueName("way")}@example.com`;
const claimsOf = (token: string) => decodeJwtPart(token, 1);

async function passkeySignIn(authenticator: SoftAuthenticator) {
  const options = (await call("POST", "/passkeys/login/options")).body.options;
  return call("POST", "/passkeys/login/verify", { body: { response: await authenticator.assert(options) } });
}

/** Adds a passkey to the account of `token` (after the step-up), with its notice mailed to `box`. */
async function addPasskey(
  box: ReturnType<typeof mailbox>,
  token: string,
  check: { current_password: string; code?: string; recovery_code?: string } = { current_password: PASSWORD },
) {
  const authenticator = new SoftAuthenticator(ORIGIN);
  const options = await registerOptions(token, check);
  const res = await box.send("POST", "/passkeys/register/verify", { token, body: { response: await authenticator.register(options), name: "Planted" } });
  expect(res.status, res.text).toBe(201);
  return authenticator;
}

const userRow = (id: string) =>
  env.DB.prepare("SELECT email_verified_at, totp_enabled_at, failed_logins FROM users WHERE id = ?").bind(id).first<Record<string, number | null>>();

describe("assurance carried in every access token", () => {
  it("a password sign-in: amr pwd, auth_time the sign-in; a refresh keeps both", async () => {
    const reg = await registerUser();
    const first = claimsOf(reg.access_token);
    expect(first.amr).toEqual(["pwd"]);
    expect(first.auth_time).toBe(first.iat);
    await new Promise((r) => setTimeout(r, 1100));
    const refreshed = await refreshWith(reg.refresh_token);
    const later = claimsOf(refreshed.body.access_token);
    expect(later.iat).toBeGreaterThan(first.iat as number);
    expect(later).toMatchObject({ amr: ["pwd"], auth_time: first.auth_time });
  });

  it("a second step: pwd, otp, mfa; a passkey: hwk (device-bound) and mfa", async () => {
    const u = await userWithTotp();
    const challenge = (await login(u.input.username)).body.challenge;
    const done = await call("POST", "/login/mfa", { body: { challenge, recovery_code: u.recoveryCodes[0] } });
    expect(claimsOf(done.body.access_token).amr).toEqual(["pwd", "otp", "mfa"]);

    const box = mailbox();
    const reg = await registerUser();
    const authenticator = await addPasskey(box, reg.access_token);
    const signedIn = await passkeySignIn(authenticator);
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(claimsOf(signedIn.body.access_token).amr).toEqual(["hwk", "mfa"]);
  });
});

describe("GET /me/security: the ways in, and what each action needs", () => {
  it("lists each way in with when and by which session it was added, never a secret", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    const other = (await login(reg.input.username)).body;
    await addPasskey(box, other.access_token);
    const res = await call("GET", "/me/security", { token: reg.access_token });
    expect(res.status, res.text).toBe(200);
    const kinds = res.body.ways_in.map((w: { kind: string }) => w.kind);
    expect(kinds).toEqual(["password", "email", "passkey"]);
    const [password, mail, passkey] = res.body.ways_in;
    expect(password).toMatchObject({ added_by_session: sidOf(reg.access_token), by_this_session: true });
    expect(mail).toMatchObject({ address: email, verified: false, added_by_session: sidOf(reg.access_token) });
    expect(passkey).toMatchObject({ name: "Planted", added_by_session: sidOf(other.access_token), by_this_session: false, last_used_at: null });
    expect(res.body.session).toEqual({ id: sidOf(reg.access_token), auth_time: expect.any(String), amr: ["pwd"] });
    expect(res.body.step_up.change_password).toEqual(["password"]);
    expect(res.text).not.toMatch(/public_key|password_hash|secret/);
    expectError(await call("GET", "/me/security"), 401, "invalid_token");
  });

  it("with TOTP on, the table asks a second factor for every change of a way in, the address, the password or the account", async () => {
    const u = await userWithTotp();
    const res = await call("GET", "/me/security", { token: u.access_token });
    const totp = res.body.ways_in.find((w: { kind: string }) => w.kind === "totp");
    expect(totp).toMatchObject({ recovery_codes_left: 10, added_by_session: sidOf(u.access_token), by_this_session: true });
    for (const action of ["change_password", "change_email", "delete_account", "disable_totp", "add_passkey", "remove_passkey"]) {
      expect(res.body.step_up[action], action).toEqual(["password", "second_factor"]);
    }
  });
});

describe("with TOTP on, the password alone moves nothing", () => {
  it("POST /email, POST /password and DELETE /me ask for a code; with one they work", async () => {
    const u = await userWithTotp();
    const noCode = { current_password: PASSWORD };
    expectError(await call("POST", "/email", { token: u.access_token, body: { new_email: address(), ...noCode } }), 401, "invalid_mfa_code");
    expectError(await call("POST", "/password", { token: u.access_token, body: { ...noCode, new_password: NEW_PASSWORD } }), 401, "invalid_mfa_code");
    expectError(await call("DELETE", "/me", { token: u.access_token, body: noCode }), 401, "invalid_mfa_code");
    expect(await stepUpFailures(u.access_token)).toBe(0); // asking is not guessing
    expect((await call("GET", "/protected", { token: u.access_token })).status).toBe(200);
    const changed = await call("POST", "/password", {
      token: u.access_token,
      body: { ...noCode, new_password: NEW_PASSWORD, recovery_code: u.recoveryCodes[0] },
    });
    expect(changed.status, changed.text).toBe(200);
    expect((await call("DELETE", "/me", { token: u.access_token, body: { current_password: NEW_PASSWORD, recovery_code: u.recoveryCodes[1] } })).status).toBe(
      200,
    );
  });
});

describe("a stranger's failed logins never block the signed-in owner", () => {
  it("with the account locked, the owner still sets up TOTP, adds a passkey, moves the address, changes the password, turns TOTP off and deletes the account", async () => {
    const box = mailbox();
    const reg = await registerUser({ email: address() });
    for (let i = 0; i < 5; i++) await login(reg.input.username, "wrong password 1");
    expectError(await login(reg.input.username), 429, "rate_limited");
    const token = reg.access_token;

    const setup = await call("POST", "/mfa/totp/setup", { token, body: { current_password: PASSWORD } });
    expect(setup.status, setup.text).toBe(200);
    await awayFromStepEdge();
    const enabled = await call("POST", "/mfa/totp/enable", { token, body: { code: await codeAt(setup.body.secret, -1) } });
    expect(enabled.status, enabled.text).toBe(200);
    const codes: string[] = enabled.body.recovery_codes;
    await addPasskey(box, token, { current_password: PASSWORD, recovery_code: codes[0] });
    expect((await box.send("POST", "/email", { token, body: { new_email: address(), current_password: PASSWORD, recovery_code: codes[1] } })).status).toBe(202);
    expect((await call("POST", "/password", { token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD, recovery_code: codes[2] } })).status).toBe(
      200,
    );
    expect((await call("POST", "/mfa/totp/disable", { token, body: { current_password: NEW_PASSWORD, recovery_code: codes[3] } })).status).toBe(200);
    expect((await call("DELETE", "/me", { token, body: { current_password: NEW_PASSWORD } })).status).toBe(200);
  });

  it("a session that keeps guessing is signed out by its own budget, and only that session", async () => {
    const u = await userWithTotp();
    const other = await call("POST", "/login/mfa", { body: { challenge: (await login(u.input.username)).body.challenge, recovery_code: u.recoveryCodes[0] } });
    const guess = async () =>
      call("POST", "/mfa/totp/disable", { token: u.access_token, body: { current_password: PASSWORD, code: await wrongCode(u.secret) } });
    for (let i = 0; i < 4; i++) expectError(await guess(), 401, "invalid_mfa_code");
    expectError(await guess(), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: u.access_token }), 401, "invalid_token");
    expect((await call("GET", "/protected", { token: other.body.access_token })).status).toBe(200);
    expect((await userRow(u.user.id))!.failed_logins).toBe(0);
    const audited = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event = 'step_up_failed'")
      .bind(u.user.id)
      .first<{ n: number }>();
    expect(audited!.n).toBe(5);
  });

  it("enabling TOTP has a guessing limit too: wrong codes spend the session's budget", async () => {
    const reg = await registerUser();
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    const guess = async () => call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await wrongCode(setup.body.secret) } });
    for (let i = 0; i < 4; i++) expectError(await guess(), 401, "invalid_mfa_code");
    expectError(await guess(), 401, "invalid_token");
  });
});

describe("recovery that reclaims: a reset by mail takes the account back", () => {
  it("a passkey planted by someone who had the password is removed, with every session; the mail says so", async () => {
    const box = mailbox();
    const email = address();
    const owner = await registerUser({ email });
    const attacker = (await login(owner.input.username)).body;
    const planted = await addPasskey(box, attacker.access_token);
    expect((await passkeySignIn(planted)).status).toBe(200);
    // The owner follows the advice: change the password, sign out everywhere, then reset by mail.
    expect((await call("POST", "/password", { token: owner.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } })).status).toBe(200);
    expect((await call("POST", "/logout/all", { body: { current_password: NEW_PASSWORD }, token: owner.access_token })).status).toBe(200);
    await box.send("POST", "/password/forgot", { body: { email } });
    const reset = await box.send("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "reclaimed secret 8" } });
    expect(reset.status, reset.text).toBe(200);
    expect(reset.body).toMatchObject({ passkeys_removed: 1, totp_removed: false });
    expect(box.sent.at(-1)).toMatchObject({ to: email, subject: "Your password was reset" });
    expect(box.sent.at(-1)!.text).toMatch(/Removed: 1 passkey/);
    expectError(await passkeySignIn(planted), 401, "invalid_credentials");
    expectError(await call("GET", "/protected", { token: attacker.access_token }), 401, "invalid_token");
    // The owner signs in with the new password.
    expect((await login(owner.input.username, "reclaimed secret 8")).status).toBe(200);
  });

  it("a squatter who registered the owner's address first loses the password, the passkey and the TOTP they set up, once the reset's wait is over", async () => {
    const box = mailbox();
    const email = address();
    const squatter = await userWithTotp(email); // no verification needed by default
    const planted = await addPasskey(box, squatter.access_token, { current_password: PASSWORD, recovery_code: squatter.recoveryCodes[0] });
    // The real owner of the address resets by mail: no code is asked (TOTP predates the proof of the
    // mailbox), but a mailbox alone never removes TOTP at once: the reset is held, every session ends.
    await box.send("POST", "/password/forgot", { body: { email } });
    const reset = await box.send("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "the real owner 9" } });
    expect(reset.status, reset.text).toBe(200);
    expect(reset.body).toMatchObject({ passkeys_removed: 0, totp_removed: false, takes_effect_at: expect.any(String) });
    expect(Date.parse(reset.body.takes_effect_at) - Date.now()).toBeGreaterThan(7 * DAY - MINUTE);
    expect(box.sent.at(-1)).toMatchObject({ to: email, subject: "Two-step sign-in will be removed from your account" });
    expectError(await call("GET", "/protected", { token: squatter.access_token }), 401, "invalid_token");
    expectError(await login(squatter.input.username, "the real owner 9"), 401, "invalid_credentials"); // not yet
    expect(await userRow(squatter.user.id)).toMatchObject({ totp_enabled_at: expect.any(Number) });

    // A week later (the cron applies it): TOTP, the passkey and the squatter's password are gone.
    await applyHoldsAt(Date.parse(reset.body.takes_effect_at) + 1000, box.binding);
    expect(await userRow(squatter.user.id)).toMatchObject({ totp_enabled_at: null, email_verified_at: expect.any(Number) });
    expect(box.sent.at(-1)).toMatchObject({ to: email, subject: "Two-step sign-in was removed from your account" });
    expectError(await passkeySignIn(planted), 401, "invalid_credentials");
    expectError(await login(squatter.input.username), 401, "invalid_credentials");
    const owner = await login(squatter.input.username, "the real owner 9");
    expect(owner.body.access_token, owner.text).toEqual(expect.any(String)); // no second step left to ask
    expect(owner.body.user.email_verified).toBe(true);
  });

  it("TOTP turned on after the address was proved stays, and the reset then needs a code (on a budget only link holders can spend)", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    // A stranger's wrong logins lock the account: the reset is not blocked by that.
    for (let i = 0; i < 5; i++) await login(reg.input.username, "wrong password 1");
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
      .bind(Date.now() - 60_000, reg.user.id)
      .run();
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    const enabling = await codeAt(setup.body.secret, -1);
    const codes = (await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: enabling } })).body.recovery_codes as string[];
    await box.send("POST", "/password/forgot", { body: { email } });
    const token = box.link(email, "reset-password");
    const noCode = await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD } });
    expectError(noCode, 401, "invalid_mfa_code");
    expect(noCode.body.message).toMatch(/send code or recovery_code/);
    // The code that turned TOTP on: told it was just used (it still takes one of the day's attempts).
    const reused = await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD, code: enabling } });
    expectError(reused, 401, "invalid_mfa_code");
    expect(reused.body.message).toMatch(/can't be used again: wait for the next code/);
    expectError(
      await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD, code: await wrongCode(setup.body.secret) } }),
      401,
      "invalid_mfa_code",
    );
    const attempts = await env.DB.prepare("SELECT sum(attempts) AS n FROM account_tokens WHERE user_id = ?").bind(reg.user.id).first<{ n: number }>();
    expect(attempts!.n).toBe(2);
    const done = await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD, recovery_code: codes[0] } });
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ totp_removed: false });
    expect((await userRow(reg.user.id))!).toMatchObject({ totp_enabled_at: expect.any(Number), failed_logins: 0 });
    // The recovery code is spent, and sign-in still takes a second step.
    expect((await login(reg.input.username, NEW_PASSWORD)).body.mfa_required).toBe(true);
    await box.send("POST", "/password/forgot", { body: { email } });
    expectError(
      await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "again secret 5", recovery_code: codes[0] } }),
      401,
      "invalid_mfa_code",
    );
  });

  it("a reset's codes: ten tries a day per account, across its links, then 429", async () => {
    const box = mailbox();
    const email = address();
    const u = await userWithTotp(email);
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
      .bind(Date.now() - 3_600_000, u.user.id)
      .run();
    const tokens: string[] = [];
    for (let i = 0; i < 2; i++) {
      await box.send("POST", "/password/forgot", { body: { email } });
      tokens.push(box.link(email, "reset-password"));
    }
    const tries = await Promise.all(
      Array.from({ length: 10 }, async (_, i) =>
        call("POST", "/password/reset", { body: { token: tokens[i % 2], new_password: NEW_PASSWORD, code: await wrongCode(u.secret) } }),
      ),
    );
    expect(tries.map((r) => r.status)).toEqual(Array(10).fill(401));
    const over = await call("POST", "/password/reset", { body: { token: tokens[0], new_password: NEW_PASSWORD, recovery_code: u.recoveryCodes[0] } });
    expectError(over, 429, "rate_limited");
    expect(over.headers.get("retry-after")).toBe("3600");
  });

  it("an address a TOTP code moved keeps TOTP's rank: a reset from the new mailbox still needs a code", async () => {
    const box = mailbox();
    const old = address();
    const u = await userWithTotp(old);
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
      .bind(Date.now() - 3_600_000, u.user.id)
      .run();
    const moved = address();
    expect(
      (await box.send("POST", "/email", { token: u.access_token, body: { new_email: moved, current_password: PASSWORD, recovery_code: u.recoveryCodes[0] } }))
        .status,
    ).toBe(202);
    expect((await call("POST", "/email/confirm", { body: { token: box.link(moved, "confirm-email"), password: PASSWORD } })).status).toBe(200);
    await box.send("POST", "/password/forgot", { body: { email: moved } });
    const token = box.link(moved, "reset-password");
    expectError(await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD } }), 401, "invalid_mfa_code");
    expect((await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD, recovery_code: u.recoveryCodes[1] } })).body.totp_removed).toBe(
      false,
    );
  });

  it("an address moved while TOTP was off outranks a TOTP turned on before the move was confirmed", async () => {
    const box = mailbox();
    const reg = await registerUser({ email: address() });
    const moved = address();
    await box.send("POST", "/email", { token: reg.access_token, body: { new_email: moved, current_password: PASSWORD } });
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    expect((await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(setup.body.secret) } })).status).toBe(200);
    expect((await call("POST", "/email/confirm", { body: { token: box.link(moved, "confirm-email"), password: PASSWORD } })).status).toBe(200);
    await box.send("POST", "/password/forgot", { body: { email: moved } });
    const done = await call("POST", "/password/reset", { body: { token: box.link(moved, "reset-password"), new_password: NEW_PASSWORD } });
    expect(done.status, done.text).toBe(200);
    // No code asked (the mailbox outranks that TOTP), but TOTP goes only after the wait.
    expect(done.body).toMatchObject({ totp_removed: false, takes_effect_at: expect.any(String) });
    await applyHoldsAt(Date.parse(done.body.takes_effect_at) + 1000);
    expect((await userRow(reg.user.id))!.totp_enabled_at).toBeNull();
  });

  it("a reset decided on a state that changed before its batch (TOTP turned on meanwhile) uses nothing and changes nothing", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    await box.send("POST", "/password/forgot", { body: { email } });
    const token = box.link(email, "reset-password");
    // Batch 1 reads the link and the account (no TOTP: no code needed); TOTP is turned on, after the
    // address was proved, just before batch 2.
    const DB = d1WriteBeforeBatch(
      2,
      "UPDATE users SET email_verified_at = ?, totp_enabled_at = ?, totp_secret = 'x' WHERE id = ?",
      Date.now() - 1000,
      Date.now(),
      reg.user.id,
    );
    expectError(await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD }, bindings: { DB } }), 400, "invalid_link");
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(401);
    expect((await userRow(reg.user.id))!.totp_enabled_at).not.toBeNull();
    // The link is still there for a request that brings the code.
    expectError(await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD } }), 401, "invalid_mfa_code");
  });

  it("a code spent elsewhere between the reset's check and its batch fails the reset", async () => {
    const box = mailbox();
    const email = address();
    const u = await userWithTotp(email);
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
      .bind(Date.now() - 3_600_000, u.user.id)
      .run();
    await box.send("POST", "/password/forgot", { body: { email } });
    const token = box.link(email, "reset-password");
    // Batch 1 reads the link; the recovery code is spent (a sign-in elsewhere) just before batch 2.
    const spent = JSON.stringify(
      JSON.parse(String((await env.DB.prepare("SELECT recovery_codes AS c FROM users WHERE id = ?").bind(u.user.id).first<{ c: string }>())!.c)).slice(1),
    );
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET recovery_codes = ? WHERE id = ?", spent, u.user.id);
    expectError(
      await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD, recovery_code: u.recoveryCodes[0] }, bindings: { DB } }),
      400,
      "invalid_link",
    );
    expectError(await login(u.input.username, NEW_PASSWORD), 401, "invalid_credentials");
  });

  it("a way in cannot be added by a session a reset ended meanwhile, nor a setup pending before it finished", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    // A passkey whose challenge was used just as the reset ended the session: not stored.
    const options = await registerOptions(reg.access_token);
    const response = await new SoftAuthenticator(ORIGIN).register(options);
    const revoke = d1WriteBeforeBatch(1, "UPDATE sessions SET revoked_at = ? WHERE id = ?", Date.now(), sidOf(reg.access_token));
    expectError(
      await call("POST", "/passkeys/register/verify", { token: reg.access_token, body: { response }, bindings: { DB: revoke } }),
      401,
      "invalid_token",
    );
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM passkeys WHERE user_id = ?").bind(reg.user.id).first<{ n: number }>();
    expect(stored!.n).toBe(0);
    // A TOTP setup left pending before a reset cannot be turned on after it.
    const other = (await login(reg.input.username)).body;
    const setup = await call("POST", "/mfa/totp/setup", { token: other.access_token, body: { current_password: PASSWORD } });
    await box.send("POST", "/password/forgot", { body: { email } });
    expect((await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: NEW_PASSWORD } })).status).toBe(200);
    const fresh = (await login(reg.input.username, NEW_PASSWORD)).body;
    await awayFromStepEdge();
    expectError(await call("POST", "/mfa/totp/enable", { token: fresh.access_token, body: { code: await codeAt(setup.body.secret) } }), 409, "mfa_not_enabled");
  });

  it("ends pending challenges: a passkey registration begun before the reset cannot finish after it", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await registerOptions(reg.access_token);
    const response = await authenticator.register(options);
    await box.send("POST", "/password/forgot", { body: { email } });
    expect((await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: NEW_PASSWORD } })).status).toBe(200);
    const late = await call("POST", "/passkeys/register/verify", {
      token: (await login(reg.input.username, NEW_PASSWORD)).body.access_token,
      body: { response },
    });
    expectError(late, 401, "invalid_challenge");
  });
});

describe('"this was not me": every notice of a new way in carries a link that removes it', () => {
  it("a planted passkey: the link removes it and ends every session; single use", async () => {
    const box = mailbox();
    const email = address();
    const owner = await registerUser({ email });
    const attacker = (await login(owner.input.username)).body;
    const planted = await addPasskey(box, attacker.access_token);
    const notice = box.sent.at(-1)!;
    expect(notice).toMatchObject({ to: email, subject: expect.stringMatching(/sign-in setting/) });
    expect(notice.text).toMatch(/A passkey was added/);
    const token = box.link(email, "revoke-way-in");
    const res = await call("POST", "/ways-in/revoke", { body: { token } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ removed: true, way: "passkey" });
    expectError(await passkeySignIn(planted), 401, "invalid_credentials");
    for (const t of [owner.access_token, attacker.access_token]) expectError(await call("GET", "/protected", { token: t }), 401, "invalid_token");
    expectError(await refreshWith(attacker.refresh_token), 401, "invalid_token");
    expectError(await call("POST", "/ways-in/revoke", { body: { token } }), 400, "invalid_link");
    const audited = await env.DB.prepare("SELECT detail FROM audit_events WHERE user_id = ? AND event = 'way_in_revoked'")
      .bind(owner.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(audited!.detail)).toEqual({ way: "passkey", removed: true, held: false });
  });

  it("a TOTP setup: the link ends every session at once, and turns TOTP off only after RECOVERY_DELAY", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    expect((await box.send("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(setup.body.secret) } })).status).toBe(200);
    expect(box.sent.at(-1)!.text).toMatch(/turned on[\s\S]*This was not me: http:\/\/localhost:5173\/#revoke-way-in=/);
    const res = await box.send("POST", "/ways-in/revoke", { body: { token: box.link(email, "revoke-way-in") } });
    expect(res.body).toMatchObject({ removed: false, way: "totp", takes_effect_at: expect.any(String) });
    expect(res.body.message).toMatch(/removed at .* unless someone signs in with it/);
    expect((await userRow(reg.user.id))!.totp_enabled_at).not.toBeNull();
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    expect((await login(reg.input.username)).body.mfa_required).toBe(true); // the password alone: not yet
    await applyHoldsAt(Date.parse(res.body.takes_effect_at) - 1000); // a second early: nothing
    expect((await userRow(reg.user.id))!.totp_enabled_at).not.toBeNull();
    await applyHoldsAt(Date.parse(res.body.takes_effect_at) + 1000);
    expect((await userRow(reg.user.id))!.totp_enabled_at).toBeNull();
    expect((await login(reg.input.username)).body.access_token).toEqual(expect.any(String));
  });

  it("an address change: the former address gets a link that undoes it, before or after the change was confirmed", async () => {
    const box = mailbox();
    const old = address();
    const reg = await registerUser({ email: old });
    const moved = address();
    expect((await box.send("POST", "/email", { token: reg.access_token, body: { new_email: moved, current_password: PASSWORD } })).status).toBe(202);
    const undo = box.link(old, "revoke-way-in");
    expect((await call("POST", "/email/confirm", { body: { token: box.link(moved, "confirm-email"), password: PASSWORD } })).status).toBe(200);
    const res = await call("POST", "/ways-in/revoke", { body: { token: undo } });
    expect(res.body).toMatchObject({ removed: true, way: "email" });
    const me = (await login(reg.input.username)).body;
    expect(me.user).toMatchObject({ email: old, email_verified: true });

    // Before the confirmation: the pending change dies.
    const other = address();
    await box.send("POST", "/email", { token: me.access_token, body: { new_email: other, current_password: PASSWORD } });
    const pending = box.link(other, "confirm-email");
    expect((await call("POST", "/ways-in/revoke", { body: { token: box.link(old, "revoke-way-in") } })).body.removed).toBe(false);
    expectError(await call("POST", "/email/confirm", { body: { token: pending, password: PASSWORD } }), 400, "invalid_link");
    expectError(await call("GET", "/protected", { token: me.access_token }), 401, "invalid_token");
  });

  it("an expired or unknown link is refused, and changes nothing", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    await addPasskey(box, reg.access_token);
    await env.DB.prepare("UPDATE account_tokens SET expires_at = ? WHERE user_id = ? AND purpose = 'revoke_way_in'")
      .bind(Date.now() - 1, reg.user.id)
      .run();
    expectError(await call("POST", "/ways-in/revoke", { body: { token: box.link(email, "revoke-way-in") } }), 400, "invalid_link");
    expectError(await call("POST", "/ways-in/revoke", { body: { token: "A".repeat(43) } }), 400, "invalid_link");
    expect((await call("GET", "/protected", { token: reg.access_token })).status).toBe(200);
  });
});

describe("REQUIRE_VERIFIED_EMAIL on: no account is stuck", () => {
  const on = { REQUIRE_VERIFIED_EMAIL: "on" } as Partial<Env>;

  it("sign-up needs an address: a username alone could never sign in", async () => {
    const res = await call("POST", "/register", { body: { username: uniqueName(), password: PASSWORD }, bindings: on });
    expectError(res, 400, "validation_failed");
    expect(res.body.fields.email).toMatch(/is required/);
  });

  it("a sign-in refused for an unverified address mails a fresh link; so does asking by address, without a token", async () => {
    const box = mailbox();
    const email = address();
    const fresh = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD }, bindings: on });
    expect(fresh.status).toBe(201);
    await env.DB.prepare("UPDATE account_tokens SET used_at = ? WHERE email = ?").bind(Date.now(), email).run(); // the first link is gone
    const refused = await box.send("POST", "/login", { body: { username: fresh.body.user.username, password: PASSWORD }, bindings: on });
    expectError(refused, 403, "email_unverified");
    expect(refused.body.message).toMatch(/new link is on its way/);
    const fromLogin = box.link(email, "verify-email");
    const asked = await box.send("POST", "/email/verify/request", { body: { email }, bindings: on });
    expect(asked.status).toBe(202);
    expect(box.link(email, "verify-email")).not.toBe(fromLogin);
    const unknown = await box.send("POST", "/email/verify/request", { body: { email: address() }, bindings: on });
    expect(unknown.text).toBe(asked.text);
    expectError(await call("POST", "/email/verify/request", { body: {} }), 400, "validation_failed");
    expect((await call("POST", "/email/verify", { body: { token: fromLogin, password: PASSWORD } })).status).toBe(200);
    expect((await call("POST", "/login", { body: { username: fresh.body.user.username, password: PASSWORD }, bindings: on })).status).toBe(200);
  });

  it("a reset by mail proves the mailbox: the account can sign in after it", async () => {
    const box = mailbox();
    const email = address();
    const fresh = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD }, bindings: on });
    await box.send("POST", "/password/forgot", { body: { email }, bindings: on });
    expect(
      (await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: NEW_PASSWORD }, bindings: on })).status,
    ).toBe(200);
    const signedIn = await call("POST", "/login", { body: { username: fresh.body.user.username, password: NEW_PASSWORD }, bindings: on });
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user.email_verified).toBe(true);
  });
});

describe("mail that strangers cannot turn against the owner", () => {
  it("an account without an address can add one: the link works", async () => {
    const box = mailbox();
    const reg = await registerUser();
    const email = address();
    expect((await box.send("POST", "/email", { token: reg.access_token, body: { new_email: email, current_password: PASSWORD } })).status).toBe(202);
    expect((await call("POST", "/email/confirm", { body: { token: box.link(email, "confirm-email"), password: PASSWORD } })).status).toBe(200);
    expect((await call("GET", "/me", { token: reg.access_token })).body.user).toMatchObject({ email, email_verified: true });
  });

  it("a mail to an unproved address carries no text of the requester's choosing, and at most three such links are pending per address", async () => {
    const box = mailbox();
    const target = address();
    const requests = [];
    for (let i = 0; i < 4; i++) {
      const u = await registerUser({ username: `Visit_evil_example_${i}_${Date.now().toString(36)}`.slice(0, 32) });
      requests.push(await box.send("POST", "/email", { token: u.access_token, body: { new_email: target, current_password: PASSWORD } }));
    }
    expect(requests.slice(0, 3).map((r) => r.status)).toEqual([202, 202, 202]);
    expectError(requests[3]!, 429, "rate_limited");
    const toTarget = box.sent.filter((m) => m.to === target);
    expect(toTarget).toHaveLength(3);
    for (const m of toTarget) expect(m.text).not.toMatch(/Visit_evil/);
  });

  it("a change refused for its recipient's limit leaves the account's pending change usable", async () => {
    const box = mailbox();
    const owner = await registerUser({ email: address() });
    const mine = address();
    await box.send("POST", "/email", { token: owner.access_token, body: { new_email: mine, current_password: PASSWORD } });
    const busy = address();
    for (let i = 0; i < 3; i++)
      await box.send("POST", "/email", { token: (await registerUser()).access_token, body: { new_email: busy, current_password: PASSWORD } });
    expectError(await box.send("POST", "/email", { token: owner.access_token, body: { new_email: busy, current_password: PASSWORD } }), 429, "rate_limited");
    expect((await call("POST", "/email/confirm", { body: { token: box.link(mine, "confirm-email"), password: PASSWORD } })).status).toBe(200);
  });

  it("an invalid body spends no mail budget", async () => {
    const reg = await registerUser({ email: address() });
    for (let i = 0; i < 6; i++)
      expectError(
        await call("POST", "/email", { token: reg.access_token, body: { new_email: "not an address", current_password: PASSWORD } }),
        400,
        "validation_failed",
      );
    expect((await call("POST", "/email", { token: reg.access_token, body: { new_email: address(), current_password: PASSWORD } })).status).toBe(202);
  });

  it("asking for a link by address answers alike for known and unknown addresses", async () => {
    const known = address();
    await registerUser({ email: known });
    const box = mailbox();
    const answers = [
      await box.send("POST", "/email/verify/request", { body: { email: known } }),
      await box.send("POST", "/email/verify/request", { body: { email: address() } }),
    ];
    expect(answers.map((a) => a.status)).toEqual([202, 202]);
    expect(answers[0]!.text).toBe(answers[1]!.text);
    expect(box.sent.map((m) => m.to)).toEqual([known]);
  });
});
