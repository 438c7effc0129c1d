import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { hashPassword, passwordOptions } from "../src/auth/core/passwords";
import { getConfig } from "../src/config";
import { applyRecoveries } from "../src/cron";
import { SoftAuthenticator } from "./authenticator";
import {
  awayFromStepEdge,
  call,
  codeAt,
  d1WriteBeforeBatch,
  expectError,
  login,
  mailbox,
  ORIGIN,
  once,
  PASSWORD,
  registerOptions,
  registerUser,
  uniqueName,
  userWithTotp,
} from "./helpers";

/** Applied holds are read from each user's state: other tests' holds in this file may be due as well. */

/**
 * A mailbox against a second factor (docs/security.md): two people at once, one holding only the
 * mailbox, the other the password and TOTP, and either may be the owner. A mailbox alone stops
 * everything at once (every session ends) but never lowers what the account requires sooner than
 * RECOVERY_DELAY, announced to every address the account has; a sign-in with a second factor
 * cancels it. Issue 27 item 1.
 */

const DAY = 86_400_000;
const NEW_PASSWORD = "battery staple 43";
const address = () => `${uniqueName("box")}@example.com`;
const applyHoldsAt = (at: number, EMAIL?: SendEmail) => applyRecoveries(EMAIL ? { ...env, EMAIL } : env, new Date(at));
const holdOf = (userId: string) =>
  env.DB.prepare("SELECT kind, due_at FROM recovery_holds WHERE user_id = ?").bind(userId).first<{ kind: string; due_at: number }>();
const totpOf = async (userId: string) =>
  (await env.DB.prepare("SELECT totp_enabled_at FROM users WHERE id = ?").bind(userId).first<{ totp_enabled_at: number | null }>())!.totp_enabled_at;

/** An owner whose address was proved, who then turned TOTP on: the notice's "not me" link is in `box`. */
async function ownerWithTotp(box: ReturnType<typeof mailbox>) {
  const email = address();
  const reg = await registerUser({ email });
  await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
    .bind(Date.now() - 60_000, reg.user.id)
    .run();
  const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
  await awayFromStepEdge();
  const enabled = await box.send("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(setup.body.secret, -1) } });
  expect(enabled.status, enabled.text).toBe(200);
  return { ...reg, email, secret: setup.body.secret as string, recoveryCodes: enabled.body.recovery_codes as string[] };
}

/** The password and a code: a complete sign-in with the second factor. */
async function signInWithCode(username: string, secret: string, password = PASSWORD) {
  const first = await login(username, password);
  expect(first.body.mfa_required, first.text).toBe(true);
  await awayFromStepEdge();
  const done = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(secret) } });
  expect(done.status, done.text).toBe(200);
  return done.body as { access_token: string };
}

describe("a mailbox alone never gets past an enabled TOTP sooner than RECOVERY_DELAY", () => {
  it("the TOTP notice's 'not me' link ends every session at once; the mailbox then gets no session without the code until the wait is over", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const notMe = box.link(owner.email, "revoke-way-in");
    // Whoever reads the mailbox: the link, then a reset by mail.
    const revoked = await box.send("POST", "/ways-in/revoke", { body: { token: notMe } });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body).toMatchObject({ way: "totp", removed: false, takes_effect_at: expect.any(String) });
    const due = Date.parse(revoked.body.takes_effect_at);
    expect(due - Date.now()).toBeGreaterThan(7 * DAY - 60_000);
    expectError(await call("GET", "/protected", { token: owner.access_token }), 401, "invalid_token");
    await box.send("POST", "/password/forgot", { body: { email: owner.email } });
    const reset = await call("POST", "/password/reset", { body: { token: box.link(owner.email, "reset-password"), new_password: NEW_PASSWORD } });
    expectError(reset, 401, "invalid_mfa_code"); // TOTP is still on, and outranks the mailbox
    expect((await login(owner.input.username)).body.mfa_required).toBe(true);
    expect(await totpOf(owner.user.id)).not.toBeNull();
    // Nothing early; at the announced time the cron removes TOTP, and only then does a reset need no code.
    await applyHoldsAt(due - 60_000);
    expect(await totpOf(owner.user.id)).not.toBeNull();
    await applyHoldsAt(due + 1000);
    expect(await totpOf(owner.user.id)).toBeNull();
  });

  it("the owner cancels it by signing in with a code; every address hears of it", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    await box.send("POST", "/ways-in/revoke", { body: { token: box.link(owner.email, "revoke-way-in") } });
    expect(box.sent.at(-1)).toMatchObject({ to: owner.email, subject: "Two-step sign-in will be removed from your account" });
    expect(box.sent.at(-1)!.text).toMatch(/sign in with your authenticator app, a recovery code or a passkey before then: that cancels it/);
    const { due_at } = (await holdOf(owner.user.id))!;

    const first = await login(owner.input.username);
    await awayFromStepEdge();
    const signedIn = await box.send("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(owner.secret) } });
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(await holdOf(owner.user.id)).toBeNull();
    expect(box.sent.at(-1)).toMatchObject({ to: owner.email, subject: "A pending change to your account was cancelled" });
    await applyHoldsAt(due_at + 1000);
    expect(await totpOf(owner.user.id)).not.toBeNull();
    const audit = await env.DB.prepare("SELECT event FROM audit_events WHERE user_id = ? AND event LIKE 'recovery_%' ORDER BY id").bind(owner.user.id).all();
    expect(audit.results.map((r) => r.event)).toEqual(["recovery_held", "recovery_cancelled"]);
  });

  it("a passkey sign-in cancels a hold", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const token = (await signInWithCode(owner.input.username, owner.secret)).access_token;
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await registerOptions(token, { current_password: PASSWORD, recovery_code: owner.recoveryCodes[0] });
    expect((await call("POST", "/passkeys/register/verify", { token, body: { response: await authenticator.register(options), name: "Key" } })).status).toBe(
      201,
    );
    // The TOTP notice's link (the first one mailed) holds TOTP's removal.
    const totpLink = /#revoke-way-in=([A-Za-z0-9_-]{43})/.exec(box.sent.find((m) => /Two-step sign-in .* turned on/.test(m.text))!.text)![1]!;
    expect((await call("POST", "/ways-in/revoke", { body: { token: totpLink } })).body.takes_effect_at).toEqual(expect.any(String));
    const passkeyOptions = (await call("POST", "/passkeys/login/options")).body.options;
    const res = await call("POST", "/passkeys/login/verify", { body: { response: await authenticator.assert(passkeyOptions) } });
    expect(res.status, res.text).toBe(200);
    expect(await holdOf(owner.user.id)).toBeNull();
  });

  it("a password change or a sign-out everywhere ends the links a mailbox could use (reset, 'not me')", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const notMe = box.link(owner.email, "revoke-way-in");
    await box.send("POST", "/password/forgot", { body: { email: owner.email } });
    const reset = box.link(owner.email, "reset-password");
    const changed = await call("POST", "/password", {
      token: owner.access_token,
      body: { current_password: PASSWORD, new_password: NEW_PASSWORD, recovery_code: owner.recoveryCodes[0] },
    });
    expect(changed.status, changed.text).toBe(200);
    expectError(await call("POST", "/ways-in/revoke", { body: { token: notMe } }), 400, "invalid_link");
    expectError(await call("POST", "/password/reset", { body: { token: reset, new_password: "x new one 77", code: "000000" } }), 400, "invalid_link");

    const other = await ownerWithTotp(box);
    const otherNotMe = box.link(other.email, "revoke-way-in");
    await box.send("POST", "/password/forgot", { body: { email: other.email } });
    const otherReset = box.link(other.email, "reset-password");
    expect(
      (await call("POST", "/logout/all", { body: { current_password: PASSWORD, recovery_code: other.recoveryCodes[0] }, token: other.access_token })).status,
    ).toBe(200);
    expectError(await call("POST", "/ways-in/revoke", { body: { token: otherNotMe } }), 400, "invalid_link");
    expectError(await call("POST", "/password/reset", { body: { token: otherReset, new_password: "x new one 77", code: "000000" } }), 400, "invalid_link");
    expect(await totpOf(other.user.id)).not.toBeNull();
  });

  it("after a move made with the password and a code, the former address's link restores it ranked with TOTP: a reset from it still needs a code", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const moved = address();
    const asked = await box.send("POST", "/email", {
      token: owner.access_token,
      body: { new_email: moved, current_password: PASSWORD, recovery_code: owner.recoveryCodes[0] },
    });
    expect(asked.status, asked.text).toBe(202);
    const undo = box.link(owner.email, "revoke-way-in");
    expect((await call("POST", "/email/confirm", { token: owner.access_token, body: { token: box.link(moved, "confirm-email") } })).status).toBe(200);
    // The old mailbox (someone else's now, say) undoes the move: its address comes back...
    const revoked = await call("POST", "/ways-in/revoke", { body: { token: undo } });
    expect(revoked.body).toMatchObject({ way: "email", removed: true });
    const row = await env.DB.prepare("SELECT email, email_verified_at, totp_enabled_at FROM users WHERE id = ?")
      .bind(owner.user.id)
      .first<{ email: string; email_verified_at: number; totp_enabled_at: number }>();
    expect(row!.email).toBe(owner.email);
    expect(row!.email_verified_at).toBe(row!.totp_enabled_at); // ranked with TOTP, not above it
    // ...but a reset from it still needs a code, and TOTP stays.
    await box.send("POST", "/password/forgot", { body: { email: owner.email } });
    expectError(
      await call("POST", "/password/reset", { body: { token: box.link(owner.email, "reset-password"), new_password: NEW_PASSWORD } }),
      401,
      "invalid_mfa_code",
    );
    expect(await totpOf(owner.user.id)).not.toBeNull();
  });

  it("an undone move tells the address it moved away from; a reset held from that address is moot once it is no longer the account's", async () => {
    const box = mailbox();
    const old = address();
    const reg = await registerUser({ email: old });
    const moved = address();
    // Asked while TOTP was off, confirmed after TOTP was turned on: the new address outranks TOTP.
    await box.send("POST", "/email", { token: reg.access_token, body: { new_email: moved, current_password: PASSWORD } });
    const undo = box.link(old, "revoke-way-in");
    const setup = await call("POST", "/mfa/totp/setup", { token: reg.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    expect((await call("POST", "/mfa/totp/enable", { token: reg.access_token, body: { code: await codeAt(setup.body.secret) } })).status).toBe(200);
    expect((await call("POST", "/email/confirm", { token: reg.access_token, body: { token: box.link(moved, "confirm-email") } })).status).toBe(200);
    await box.send("POST", "/password/forgot", { body: { email: moved } });
    const held = await box.send("POST", "/password/reset", { body: { token: box.link(moved, "reset-password"), new_password: NEW_PASSWORD } });
    expect(held.body.takes_effect_at).toEqual(expect.any(String));
    // The former address undoes the move: the address it left hears of it.
    expect((await box.send("POST", "/ways-in/revoke", { body: { token: undo } })).body).toMatchObject({ way: "email", removed: true });
    expect(box.sent.filter((m) => m.to === moved).at(-1)).toMatchObject({ subject: "The address of your account was changed back" });
    // The reset held from the address the account no longer has does not apply.
    await applyHoldsAt(Date.parse(held.body.takes_effect_at) + 1000);
    expect(await holdOf(reg.user.id)).toBeNull();
    expect(await totpOf(reg.user.id)).not.toBeNull();
    expectError(await login(reg.input.username, NEW_PASSWORD), 401, "invalid_credentials");
  });

  it("announced to every address the account has: its own, and each one a linked provider vouches for", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const vouched = address();
    const row = [crypto.randomUUID(), owner.user.id, "local", "https://idp.example", `sub-${crypto.randomUUID()}`, vouched, 1, Date.now()];
    await env.DB.prepare("INSERT INTO identities (id, user_id, provider, issuer, subject, email, email_verified, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(...row)
      .run();
    await box.send("POST", "/ways-in/revoke", { body: { token: box.link(owner.email, "revoke-way-in") } });
    const told = box.sent.filter((m) => m.subject === "Two-step sign-in will be removed from your account").map((m) => m.to);
    expect(told.sort()).toEqual([owner.email, vouched].sort());
    for (const m of box.sent) expect(m.text).not.toMatch(/#revoke-way-in=.*#revoke-way-in=/); // no new links in the notices
  });
});

describe("one hold per account", () => {
  it("a later request joins it: the wait neither restarts nor shortens, and a held reset takes the newest password", async () => {
    const box = mailbox();
    const email = address();
    const squatter = await userWithTotp(email); // TOTP set up before the address was proved: resets are held
    const resetWith = async (password: string) => {
      await box.send("POST", "/password/forgot", { body: { email } });
      return (await box.send("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: password } })).body;
    };
    const first = await resetWith("first choice 111");
    await new Promise((r) => setTimeout(r, 20));
    const second = await resetWith("second choice 222");
    expect(second.takes_effect_at).toBe(first.takes_effect_at);
    await applyHoldsAt(Date.parse(first.takes_effect_at) + 1000);
    expectError(await login(squatter.input.username, "first choice 111"), 401, "invalid_credentials");
    expect((await login(squatter.input.username, "second choice 222")).body.access_token).toEqual(expect.any(String));
  });
});

describe("both people at once (ARCHITECTURE: judged against two people)", () => {
  it("someone with the password turned TOTP on: the owner's mailbox link ends their sessions; away for the wait, TOTP goes and the owner resets", async () => {
    const box = mailbox();
    const email = address();
    const owner = await registerUser({ email });
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?")
      .bind(Date.now() - 60_000, owner.user.id)
      .run();
    const thief = (await login(owner.input.username)).body;
    const setup = await call("POST", "/mfa/totp/setup", { token: thief.access_token, body: { current_password: PASSWORD } });
    await awayFromStepEdge();
    expect((await box.send("POST", "/mfa/totp/enable", { token: thief.access_token, body: { code: await codeAt(setup.body.secret, -1) } })).status).toBe(200);
    const revoked = await box.send("POST", "/ways-in/revoke", { body: { token: box.link(email, "revoke-way-in") } });
    expectError(await call("GET", "/protected", { token: thief.access_token }), 401, "invalid_token");
    await applyHoldsAt(Date.parse(revoked.body.takes_effect_at) + 1000);
    await box.send("POST", "/password/forgot", { body: { email } });
    const reset = await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: NEW_PASSWORD } });
    expect(reset.status, reset.text).toBe(200);
    expectError(await login(owner.input.username), 401, "invalid_credentials"); // the thief's password is gone
    expect((await login(owner.input.username, NEW_PASSWORD)).body.access_token).toEqual(expect.any(String));
  });

  it("...but whoever holds the factor and signs in with it during the wait keeps the account: the documented price", async () => {
    const box = mailbox();
    const email = address();
    const squatter = await userWithTotp(email); // made the account with someone else's unproved address
    await box.send("POST", "/password/forgot", { body: { email } });
    const held = await box.send("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: "the address owner 1" } });
    expect(held.body.takes_effect_at).toEqual(expect.any(String));
    await signInWithCode(squatter.input.username, squatter.secret);
    await applyHoldsAt(Date.parse(held.body.takes_effect_at) + 1000);
    expectError(await login(squatter.input.username, "the address owner 1"), 401, "invalid_credentials");
    expect((await login(squatter.input.username)).body.mfa_required).toBe(true);
  });
});

describe("the cron that applies holds", () => {
  it("a run whose batch fails leaves the hold for the next; two runs at once apply it once", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const revoked = await box.send("POST", "/ways-in/revoke", { body: { token: box.link(owner.email, "revoke-way-in") } });
    const at = Date.parse(revoked.body.takes_effect_at) + 1000;
    const DB = once(env.DB, "batch", async () => {
      throw new Error("injected: D1 batch failed");
    });
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await applyRecoveries({ ...env, DB }, new Date(at))).toBeUndefined();
    logged.mockRestore();
    expect(await holdOf(owner.user.id)).not.toBeNull();
    expect(await totpOf(owner.user.id)).not.toBeNull();
    await Promise.all([applyHoldsAt(at), applyHoldsAt(at)]);
    expect(await totpOf(owner.user.id)).toBeNull();
    expect(await holdOf(owner.user.id)).toBeNull();
    const applied = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event = 'recovery_applied'")
      .bind(owner.user.id)
      .first<{ n: number }>();
    expect(applied!.n).toBe(1);
  });

  it("a request that joins a hold between the cron's read and its batch is applied by the next run, not lost", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const revoked = await box.send("POST", "/ways-in/revoke", { body: { token: box.link(owner.email, "revoke-way-in") } });
    const at = Date.parse(revoked.body.takes_effect_at) + 1000;
    // A held reset joins the TOTP removal just before the run's batch (its password: NEW_PASSWORD).
    const newHash = await hashPassword(NEW_PASSWORD, passwordOptions(getConfig(env)));
    const DB = d1WriteBeforeBatch(
      1,
      "UPDATE recovery_holds SET kind = 'reset', password_hash = ?, mailbox = ? WHERE user_id = ?",
      newHash,
      owner.email,
      owner.user.id,
    );
    await applyRecoveries({ ...env, DB }, new Date(at));
    expect(await holdOf(owner.user.id)).toMatchObject({ kind: "reset" }); // not applied as a TOTP removal alone, not dropped
    expect(await totpOf(owner.user.id)).not.toBeNull();
    await applyHoldsAt(at);
    expect(await holdOf(owner.user.id)).toBeNull();
    expect(await totpOf(owner.user.id)).toBeNull();
    expect((await login(owner.input.username, NEW_PASSWORD)).body.access_token).toEqual(expect.any(String));
  });

  it("a hold whose TOTP the owner turned off and on again meanwhile is dropped, not applied to the new one", async () => {
    const box = mailbox();
    const owner = await ownerWithTotp(box);
    const revoked = await box.send("POST", "/ways-in/revoke", { body: { token: box.link(owner.email, "revoke-way-in") } });
    // (A sign-in would cancel it; here the TOTP row changes behind the hold's back.)
    await env.DB.prepare("UPDATE users SET totp_enabled_at = totp_enabled_at + 1 WHERE id = ?").bind(owner.user.id).run();
    await applyHoldsAt(Date.parse(revoked.body.takes_effect_at) + 1000);
    expect(await totpOf(owner.user.id)).not.toBeNull();
    expect(await holdOf(owner.user.id)).toBeNull();
  });
});
