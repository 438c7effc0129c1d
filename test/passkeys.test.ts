import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { SoftAuthenticator, type Tweaks } from "./authenticator";
import {
  awayFromStepEdge,
  type CallOptions,
  call,
  codeAt,
  d1BatchAnswerLostAt,
  d1WriteBeforeBatch,
  expectError,
  mailbox,
  ORIGIN,
  PASSWORD,
  registerOptions,
  registerUser,
  stepUpFailures,
  userWithPasskey,
  userWithTotp,
  wrongCode,
} from "./helpers";

/**
 * Passkeys through the worker's own fetch, with a software authenticator standing in for the browser
 * (test/authenticator.ts): registration, sign-in without a password, the list, removal, and the
 * attacks: replayed, expired and foreign challenges, wrong origin and rp id, a counter that goes
 * backwards, another user's passkey, no user verification.
 */

async function loginOptions() {
  const res = await call("POST", "/passkeys/login/options");
  expect(res.status, res.text).toBe(200);
  return res.body.options as { challenge: string; rpId: string; userVerification: string; allowCredentials?: unknown[] };
}

async function signIn(authenticator: SoftAuthenticator, tweaks: Tweaks = {}, opts: CallOptions = {}) {
  const options = await loginOptions();
  return call("POST", "/passkeys/login/verify", { ...opts, body: { response: await authenticator.assert(options, tweaks) } });
}

const challengeRow = (id: string) =>
  env.DB.prepare("SELECT purpose, user_id, used_at FROM challenges WHERE id = ?")
    .bind(id)
    .first<{ purpose: string; user_id: string | null; used_at: number | null }>();

describe("registering a passkey", () => {
  it("offers a discoverable credential with user verification for this rp, and stores the public key only", async () => {
    const box = mailbox();
    const email = `pk_${Date.now()}@example.com`;
    const reg = await registerUser({ email });
    const options = await registerOptions(reg.access_token);
    expect(options.rp).toEqual({ id: "localhost", name: "Edge Auth" });
    expect(options.user.name).toBe(reg.input.username);
    expect(options.authenticatorSelection).toMatchObject({ residentKey: "required", userVerification: "required" });
    expect(await challengeRow(options.challenge)).toMatchObject({ purpose: "passkey_register", user_id: reg.user.id, used_at: null });

    const authenticator = new SoftAuthenticator(ORIGIN);
    const res = await box.send("POST", "/passkeys/register/verify", {
      token: reg.access_token,
      body: { response: await authenticator.register(options), name: "Laptop" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ id: authenticator.credentialId, name: "Laptop", last_used_at: null, backed_up: false });
    const row = await env.DB.prepare("SELECT user_id, public_key, counter FROM passkeys WHERE id = ?")
      .bind(authenticator.credentialId)
      .first<Record<string, unknown>>();
    expect(row).toMatchObject({ user_id: reg.user.id, counter: 0 });
    expect(String(row!.public_key)).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(box.sent.at(-1)).toMatchObject({ to: email });
    expect(box.sent.at(-1)!.text).toMatch(/A passkey was added/);
    expect(box.sent.at(-1)!.text).not.toContain("Laptop"); // no text of the client's choosing in a mail

    const list = await call("GET", "/passkeys", { token: reg.access_token });
    expect(list.body.passkeys).toEqual([expect.objectContaining({ id: authenticator.credentialId, name: "Laptop" })]);
    expect((await call("GET", "/me", { token: reg.access_token })).body.factors).toEqual({ totp: false, recovery_codes_left: 0, passkeys: 1 });
    // The same authenticator is excluded from the next registration.
    expect((await registerOptions(reg.access_token)).excludeCredentials.map((c) => c.id)).toEqual([authenticator.credentialId]);
  });

  it("takes a step-up: the password, and a code while TOTP is on, on the session's own budget", async () => {
    const reg = await registerUser();
    const wrong = await call("POST", "/passkeys/register/options", { token: reg.access_token, body: { current_password: "wrong password 1" } });
    expectError(wrong, 401, "invalid_credentials");
    expectError(await call("POST", "/passkeys/register/options", { token: reg.access_token }), 400, "validation_failed");
    const lockFailures = async (id: string) => (await env.DB.prepare("SELECT failed_logins AS n FROM users WHERE id = ?").bind(id).first<{ n: number }>())!.n;
    expect(await stepUpFailures(reg.access_token)).toBe(1);
    expect(await lockFailures(reg.user.id)).toBe(0);

    const u = await userWithTotp();
    const noCode = await call("POST", "/passkeys/register/options", { token: u.access_token, body: { current_password: PASSWORD } });
    expectError(noCode, 401, "invalid_mfa_code");
    expect(noCode.body.message).toMatch(/send code or recovery_code/);
    expect(await stepUpFailures(u.access_token)).toBe(0); // not a guess
    expectError(
      await call("POST", "/passkeys/register/options", { token: u.access_token, body: { current_password: PASSWORD, code: await wrongCode(u.secret) } }),
      401,
      "invalid_mfa_code",
    );
    expect(await stepUpFailures(u.access_token)).toBe(1);
    await awayFromStepEdge();
    const code = await codeAt(u.secret);
    const options = await registerOptions(u.access_token, { current_password: PASSWORD, code });
    expect(options.challenge).toEqual(expect.any(String));
    expect(await stepUpFailures(u.access_token)).toBe(0);
    expect(await lockFailures(u.user.id)).toBe(0);
    // The code is spent: it does not open a second ceremony, nor a sign-in.
    expectError(
      await call("POST", "/passkeys/register/options", { token: u.access_token, body: { current_password: PASSWORD, code } }),
      401,
      "invalid_mfa_code",
    );
    expect(
      (await call("POST", "/passkeys/register/options", { token: u.access_token, body: { current_password: PASSWORD, recovery_code: u.recoveryCodes[0] } }))
        .status,
    ).toBe(200);
  });

  it("refuses a used challenge, an expired one, and another user's", async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const options = await registerOptions(alice.access_token);
    const response = await new SoftAuthenticator(ORIGIN).register(options);
    // Bob sends a response to Alice's challenge.
    expectError(await call("POST", "/passkeys/register/verify", { token: bob.access_token, body: { response } }), 401, "invalid_challenge");
    expect((await call("POST", "/passkeys/register/verify", { token: alice.access_token, body: { response } })).status).toBe(201);
    // Used.
    const again = await new SoftAuthenticator(ORIGIN).register(options);
    expectError(await call("POST", "/passkeys/register/verify", { token: alice.access_token, body: { response: again } }), 401, "invalid_challenge");
    // Expired.
    const late = await registerOptions(alice.access_token);
    await env.DB.prepare("UPDATE challenges SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1, late.challenge)
      .run();
    expectError(
      await call("POST", "/passkeys/register/verify", { token: alice.access_token, body: { response: await new SoftAuthenticator(ORIGIN).register(late) } }),
      401,
      "invalid_challenge",
    );
    // A login challenge is no registration challenge.
    const loginChallenge = await loginOptions();
    const mixed = await new SoftAuthenticator(ORIGIN).register({ ...late, challenge: loginChallenge.challenge });
    expectError(await call("POST", "/passkeys/register/verify", { token: alice.access_token, body: { response: mixed } }), 401, "invalid_challenge");
  });

  it("a registration whose answer was lost: the retry gets the passkey that was stored, once", async () => {
    const reg = await registerUser();
    const options = await registerOptions(reg.access_token);
    const body = { response: await new SoftAuthenticator(ORIGIN).register(options), name: "Phone" };
    const DB = d1BatchAnswerLostAt(1); // the batch that stores the passkey
    expectError(await call("POST", "/passkeys/register/verify", { token: reg.access_token, body, bindings: { DB } }), 500, "internal_error");
    const retry = await call("POST", "/passkeys/register/verify", { token: reg.access_token, body });
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body).toMatchObject({ id: body.response.id, name: "Phone" });
    expect((await call("GET", "/passkeys", { token: reg.access_token })).body.passkeys).toHaveLength(1);
    const audited = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event = 'passkey_added'")
      .bind(reg.user.id)
      .first<{ n: number }>();
    expect(audited!.n).toBe(1); // committed with the passkey, once
    // Another user sending it is refused, and so is a retry after the grace.
    const other = await registerUser();
    expectError(await call("POST", "/passkeys/register/verify", { token: other.access_token, body }), 401, "invalid_challenge");
    await env.DB.prepare("UPDATE passkeys SET created_at = ? WHERE id = ?")
      .bind(Date.now() - 11_000, body.response.id)
      .run();
    expectError(await call("POST", "/passkeys/register/verify", { token: reg.access_token, body }), 401, "invalid_challenge");
  });

  it("refuses a wrong origin, a wrong rp id and a credential made without user verification", async () => {
    const reg = await registerUser();
    for (const tweaks of [{ origin: "https://evil.example" }, { rpId: "evil.example" }, { userVerified: false }] satisfies Tweaks[]) {
      const options = await registerOptions(reg.access_token);
      const res = await call("POST", "/passkeys/register/verify", {
        token: reg.access_token,
        body: { response: await new SoftAuthenticator(ORIGIN).register(options, tweaks) },
      });
      expectError(res, 400, "passkey_rejected");
    }
    expect((await call("GET", "/passkeys", { token: reg.access_token })).body.passkeys).toEqual([]);
  });

  it("answers 400 for malformed responses, never 500", async () => {
    const reg = await registerUser();
    const options = await registerOptions(reg.access_token);
    const good = await new SoftAuthenticator(ORIGIN).register(options);
    const bodies = [
      {},
      { response: "x" },
      { response: { ...good, type: "password" } },
      { response: { ...good, response: { ...good.response, attestationObject: "!!" } } },
      { response: { ...good, response: { ...good.response, clientDataJSON: "bm90IGpzb24" } } }, // "not json"
      { response: { ...good, response: { ...good.response, attestationObject: "AAAA" } } },
    ];
    for (const body of bodies) {
      const res = await call("POST", "/passkeys/register/verify", { token: reg.access_token, body });
      expect([400, 401], res.text).toContain(res.status);
    }
    expectError(await call("POST", "/passkeys/register/verify", { body: { response: good } }), 401, "invalid_token");
  });
});

describe("signing in with a passkey", () => {
  it("opens the same kind of session as a password login, without a password or a TOTP step", async () => {
    const u = await userWithPasskey();
    const options = await loginOptions();
    expect(options).toMatchObject({ rpId: "localhost", userVerification: "required" });
    expect(options.allowCredentials ?? []).toEqual([]); // discoverable: no user named
    const res = await call("POST", "/passkeys/login/verify", { body: { response: await u.authenticator.assert(options) } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ user: { id: u.user.id }, token_type: "Bearer", refresh_token: expect.any(String) });
    expect((await call("GET", "/protected", { token: res.body.access_token })).status).toBe(200);
    expect((await call("POST", "/refresh", { body: { refresh_token: res.body.refresh_token } })).status).toBe(200);
    const row = await env.DB.prepare("SELECT counter, last_used_at FROM passkeys WHERE id = ?")
      .bind(u.passkey.id)
      .first<{ counter: number; last_used_at: number | null }>();
    expect(row).toMatchObject({ counter: 1, last_used_at: expect.any(Number) });
    const audit = await env.DB.prepare("SELECT detail FROM audit_events WHERE user_id = ? AND event = 'login_succeeded'")
      .bind(u.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(audit!.detail)).toMatchObject({ method: "passkey" });
  });

  it("refuses a replayed assertion and an expired challenge", async () => {
    const u = await userWithPasskey();
    const options = await loginOptions();
    const response = await u.authenticator.assert(options);
    expect((await call("POST", "/passkeys/login/verify", { body: { response } })).status).toBe(200);
    expectError(await call("POST", "/passkeys/login/verify", { body: { response } }), 401, "invalid_challenge");
    const late = await loginOptions();
    await env.DB.prepare("UPDATE challenges SET expires_at = ? WHERE id = ?")
      .bind(Date.now() - 1, late.challenge)
      .run();
    expectError(await call("POST", "/passkeys/login/verify", { body: { response: await u.authenticator.assert(late) } }), 401, "invalid_challenge");
    // A challenge the server never issued.
    expectError(
      await call("POST", "/passkeys/login/verify", { body: { response: await u.authenticator.assert({ challenge: "bm90LWlzc3VlZA" }) } }),
      401,
      "invalid_challenge",
    );
  });

  it("refuses a wrong origin, a wrong rp id and an assertion without user verification, each for its reason", async () => {
    const u = await userWithPasskey();
    const warnings: string[] = [];
    vi.spyOn(console, "warn").mockImplementation((line: string) => void warnings.push(line));
    const cases: [Tweaks, RegExp][] = [
      [{ origin: "https://evil.example" }, /origin/i],
      [{ rpId: "evil.example" }, /RP ID/i],
      [{ userVerified: false }, /user verification/i],
    ];
    for (const [tweaks, reason] of cases) {
      expectError(await signIn(u.authenticator, tweaks), 401, "invalid_credentials");
      expect(JSON.parse(warnings.at(-1)!)).toMatchObject({ event: "passkey_rejected", message: expect.stringMatching(reason) });
    }
    vi.restoreAllMocks();
    expect((await signIn(u.authenticator)).status).toBe(200);
  });

  it("refuses a registration challenge at sign-in", async () => {
    const u = await userWithPasskey();
    const creation = await registerOptions(u.access_token);
    expectError(
      await call("POST", "/passkeys/login/verify", { body: { response: await u.authenticator.assert({ challenge: creation.challenge }) } }),
      401,
      "invalid_challenge",
    );
  });

  it("refuses a counter that goes backwards (a cloned authenticator) and audits it", async () => {
    const u = await userWithPasskey();
    expect((await signIn(u.authenticator, { counter: 5 })).status).toBe(200);
    expectError(await signIn(u.authenticator, { counter: 5 }), 401, "invalid_credentials"); // not forward
    expectError(await signIn(u.authenticator, { counter: 3 }), 401, "invalid_credentials"); // backwards
    expectError(await signIn(u.authenticator, { counter: 0 }), 401, "invalid_credentials"); // stopped counting
    expect((await signIn(u.authenticator, { counter: 6 })).status).toBe(200);
    const events = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND event = 'passkey_counter_regressed'")
      .bind(u.user.id)
      .first<{ n: number }>();
    expect(events!.n).toBe(3);
  });

  it("answers 401 (never 500) for a malformed assertion", async () => {
    const u = await userWithPasskey();
    for (const change of [
      (r: Awaited<ReturnType<SoftAuthenticator["assert"]>>) => ({ ...r, response: { ...r.response, authenticatorData: "AAAA" } }),
      (r: Awaited<ReturnType<SoftAuthenticator["assert"]>>) => ({ ...r, response: { ...r.response, signature: "AAAA" } }),
      (r: Awaited<ReturnType<SoftAuthenticator["assert"]>>) => ({ ...r, response: { ...r.response, signature: "" } }),
    ]) {
      const response = change(await u.authenticator.assert(await loginOptions()));
      expectError(await call("POST", "/passkeys/login/verify", { body: { response } }), 401, "invalid_credentials");
    }
    const reasons = await env.DB.prepare("SELECT detail FROM audit_events WHERE user_id = ? AND event = 'passkey_login_failed'")
      .bind(u.user.id)
      .all<{ detail: string }>();
    expect(reasons.results.map((r) => JSON.parse(r.detail).reason)).toEqual(["verification_failed", "verification_failed", "verification_failed"]);
  });

  it("accepts an authenticator that keeps no counter (always 0)", async () => {
    const u = await userWithPasskey();
    expect((await signIn(u.authenticator, { counter: 0 })).status).toBe(200);
    expect((await signIn(u.authenticator, { counter: 0 })).status).toBe(200);
  });

  it("of two sign-ins with one counter value that race past the library's check, one opens a session", async () => {
    const u = await userWithPasskey();
    // The other sign-in's counter lands between this one's read of the passkey and its write.
    const DB = d1WriteBeforeBatch(2, "UPDATE passkeys SET counter = 1 WHERE id = ?", u.passkey.id);
    expectError(await signIn(u.authenticator, { counter: 1 }, { bindings: { DB } }), 401, "invalid_credentials");
    const sessions = await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(u.user.id).first<{ n: number }>();
    expect(sessions!.n).toBe(1); // registration only
  });

  it("refuses another user's passkey: a user handle that is not its owner's, or an unknown credential", async () => {
    const alice = await userWithPasskey();
    const bob = await userWithPasskey();
    // Alice's credential, claiming to be Bob (his user handle).
    expectError(await signIn(alice.authenticator, { userHandle: bob.authenticator.userHandle }), 401, "invalid_credentials");
    // A key nobody registered.
    const stranger = new SoftAuthenticator(ORIGIN);
    stranger.userHandle = alice.authenticator.userHandle;
    expectError(await signIn(stranger), 401, "invalid_credentials");
    // Without a user handle the credential's owner is who signs in.
    const res = await signIn(alice.authenticator, { userHandle: null });
    expect(res.body.user.id).toBe(alice.user.id);
  });

  it("refuses a name with bidi overrides, zero-width or separator characters (one name passing for another)", async () => {
    const reg = await registerUser();
    for (const name of ["Laptop\u202Egnp.exe", "Lap\u200Btop", "Lap\u2028top", "Lap\u0007top"]) {
      const options = await registerOptions(reg.access_token);
      const res = await call("POST", "/passkeys/register/verify", {
        token: reg.access_token,
        body: { response: await new SoftAuthenticator(ORIGIN).register(options), name },
      });
      expectError(res, 400, "validation_failed");
      expect(res.body.fields.name).toMatch(/must not contain/);
    }
    const options = await registerOptions(reg.access_token);
    const ok = await call("POST", "/passkeys/register/verify", {
      token: reg.access_token,
      body: { response: await new SoftAuthenticator(ORIGIN).register(options), name: "Zoë's phone" },
    });
    expect(ok.status, ok.text).toBe(201);
  });

  it("refuses a disabled account", async () => {
    const u = await userWithPasskey();
    await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), u.user.id).run();
    expectError(await signIn(u.authenticator), 403, "account_disabled");
  });

  it("sets the refresh cookie in cookie mode, for an allowed Origin only", async () => {
    const u = await userWithPasskey();
    const options = await loginOptions();
    const body = { response: await u.authenticator.assert(options), use_cookie: true };
    expectError(await call("POST", "/passkeys/login/verify", { body, headers: { origin: "https://evil.example" } }), 403, "forbidden");
    const next = await loginOptions();
    const res = await call("POST", "/passkeys/login/verify", { body: { ...body, response: await u.authenticator.assert(next) }, headers: { origin: ORIGIN } });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("set-cookie")).toMatch(/HttpOnly/);
    expect(res.body.refresh_token).toBeUndefined();
  });
});

describe("the passkey list", () => {
  it("removes one of the caller's passkeys; another user's id is not_found; sign-in with it then fails", async () => {
    const box = mailbox();
    const alice = await userWithPasskey({ email: `rm_${Date.now()}@example.com` });
    const bob = await registerUser();
    const check = { current_password: PASSWORD };
    expectError(await call("DELETE", `/passkeys/${alice.passkey.id}`, { token: bob.access_token, body: check }), 404, "not_found");
    // A step-up first: a stolen access token alone cannot remove a way in.
    expectError(
      await call("DELETE", `/passkeys/${alice.passkey.id}`, { token: alice.access_token, body: { current_password: "wrong password 1" } }),
      401,
      "invalid_credentials",
    );
    expectError(await call("DELETE", `/passkeys/${alice.passkey.id}`, { token: alice.access_token }), 400, "validation_failed");
    expect((await box.send("DELETE", `/passkeys/${alice.passkey.id}`, { token: alice.access_token, body: check })).status).toBe(200);
    expect(box.sent.at(-1)!.text).toMatch(/A passkey was removed/);
    expectError(await call("DELETE", `/passkeys/${alice.passkey.id}`, { token: alice.access_token, body: check }), 404, "not_found");
    expect((await call("GET", "/passkeys", { token: alice.access_token })).body.passkeys).toEqual([]);
    expectError(await signIn(alice.authenticator), 401, "invalid_credentials");
    // The password still works: no account is left without a way in.
    expect((await call("POST", "/login", { body: { username: alice.input.username, password: PASSWORD } })).status).toBe(200);
  });

  it("goes with the account", async () => {
    const u = await userWithPasskey();
    expect((await call("DELETE", "/me", { token: u.access_token, body: { current_password: PASSWORD } })).status).toBe(200);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM passkeys WHERE user_id = ?").bind(u.user.id).first<{ n: number }>();
    expect(left!.n).toBe(0);
  });

  it("the admin sees a user's factors, never a secret", async () => {
    const u = await userWithPasskey();
    const admin = await registerUser();
    await env.DB.prepare(`UPDATE users SET roles = '["user","admin"]' WHERE id = ?`).bind(admin.user.id).run();
    const token = (await call("POST", "/login", { body: { username: admin.input.username, password: PASSWORD } })).body.access_token;
    const res = await call("GET", `/admin/users/${u.user.id}`, { token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.factors).toEqual({ totp: false, recovery_codes_left: 0, passkeys: 1 });
    expect(res.text).not.toMatch(/public_key|publicKey|secret/);
  });
});
