import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  adminToken,
  call,
  capturingQueue,
  d1Held,
  d1WriteBeforeBatch,
  deliverJobs,
  expectError,
  kvPutFailsOnce,
  login,
  mailbox,
  once,
  PASSWORD,
  randomIp,
  refreshWith,
  registerUser,
  uniqueName,
} from "./helpers";

/**
 * Mailed links (email verification, password reset, email change), account deletion and admin user
 * management. Mail goes to a binding that keeps it, so a test can follow the link as a user would.
 */

afterEach(() => vi.restoreAllMocks());

const NEW_PASSWORD = "battery staple 43";
const address = () => `${uniqueName("mail")}@example.com`;

describe("email verification", () => {
  it("mails a link at registration; using it verifies the address, in the user and in new tokens", async () => {
    const box = mailbox();
    const email = address();
    const reg = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD } });
    expect(reg.body.user.email_verified).toBe(false);
    expect(box.sent).toHaveLength(1);
    expect(box.sent[0]).toMatchObject({ from: env.MAIL_FROM, to: email, subject: expect.stringMatching(/confirm/i) });
    expect(box.sent[0]!.html).toContain('<a href="http://localhost:5173/#verify-email=');
    const token = box.link(email, "verify-email");
    expect((await call("POST", "/email/verify", { body: { token, password: PASSWORD } })).status).toBe(200);
    const me = await call("GET", "/me", { token: reg.body.access_token });
    expect(me.body.user.email_verified).toBe(true);
    const again = await login(reg.body.user.username);
    expect(JSON.parse(atob(again.body.access_token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).email_verified).toBe(true);
    // Single use.
    expectError(await call("POST", "/email/verify", { body: { token, password: PASSWORD } }), 400, "invalid_link");
  });

  it("three links may be live at once (a fourth request mails nothing); using one ends the others; an expired or unknown one is refused the same way", async () => {
    const box = mailbox();
    const email = address();
    const reg = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD } });
    const tokens = [box.link(email, "verify-email")];
    for (let i = 0; i < 2; i++) {
      expect((await box.send("POST", "/email/verify/request", { token: reg.body.access_token })).status).toBe(202);
      tokens.push(box.link(email, "verify-email"));
    }
    expect(new Set(tokens).size).toBe(3);
    expect((await box.send("POST", "/email/verify/request", { token: reg.body.access_token })).status).toBe(202);
    expect(box.sent).toHaveLength(3);
    // Only hashes at rest.
    const dump = JSON.stringify((await env.DB.prepare("SELECT * FROM account_tokens").all()).results);
    for (const t of tokens) expect(dump).not.toContain(t);
    expect((await call("POST", "/email/verify", { body: { token: tokens[0], password: PASSWORD } })).status).toBe(200);
    for (const t of tokens.slice(1)) expectError(await call("POST", "/email/verify", { body: { token: t, password: PASSWORD } }), 400, "invalid_link");
    // A verified address gets no more links.
    expect((await box.send("POST", "/email/verify/request", { token: reg.body.access_token })).status).toBe(202);
    expect(box.sent).toHaveLength(3);

    const other = address();
    await box.send("POST", "/register", { body: { username: uniqueName(), email: other, password: PASSWORD } });
    const expiring = box.link(other, "verify-email");
    await env.DB.prepare("UPDATE account_tokens SET expires_at = ? WHERE email = ?")
      .bind(Date.now() - 1, other)
      .run();
    expectError(await call("POST", "/email/verify", { body: { token: expiring, password: PASSWORD } }), 400, "invalid_link");
    expectError(await call("POST", "/email/verify", { body: { token: "A".repeat(43), password: PASSWORD } }), 400, "invalid_link");
  });

  it("two verifications with one link: exactly one wins", async () => {
    const box = mailbox();
    const email = address();
    await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD } });
    const token = box.link(email, "verify-email");
    const results = await Promise.all([0, 1, 2].map(() => call("POST", "/email/verify", { body: { token, password: PASSWORD } })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
  });

  it("with REQUIRE_VERIFIED_EMAIL on, registering gives no tokens, and login and refresh refuse an unverified account", async () => {
    const reg = await registerUser({ email: address() });
    const bindings = { REQUIRE_VERIFIED_EMAIL: "on" } as Partial<Env>;
    const fresh = await call("POST", "/register", { body: { username: uniqueName(), email: address(), password: PASSWORD }, bindings });
    expect(fresh.status).toBe(201);
    expect(fresh.body.access_token).toBeUndefined();
    expect(fresh.body.user.email_verified).toBe(false);
    // A session from before the switch cannot be refreshed either.
    expectError(await call("POST", "/refresh", { body: { refresh_token: reg.refresh_token }, bindings }), 401, "invalid_token");
    expectError(await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings }), 403, "email_unverified");
    // The wrong password still gets the usual answer: the state is told only to the owner.
    expectError(await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" }, bindings }), 401, "invalid_credentials");
  });
});

describe("password reset", () => {
  it("mails a link; using it sets the password, ends every session, clears the lock, and is single-use", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    const other = await login(reg.input.username);
    for (let i = 0; i < 5; i++) await call("POST", "/login", { body: { username: reg.input.username, password: "wrong password 1" } });
    const forgot = await box.send("POST", "/password/forgot", { body: { email: email.toUpperCase() } });
    expect(forgot.status).toBe(202);
    const token = box.link(email, "reset-password");
    const reset = await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD } });
    expect(reset.status, reset.text).toBe(200);
    for (const s of [reg, other.body]) {
      expectError(await call("GET", "/protected", { token: s.access_token }), 401, "invalid_token");
      expectError(await refreshWith(s.refresh_token), 401, "invalid_token");
    }
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200); // no lock left
    expectError(await call("POST", "/password/reset", { body: { token, new_password: "third password 44" } }), 400, "invalid_link");
  });

  it("answers an unknown address exactly as a known one: status, body, no D1 statement, one queued job alike", async () => {
    const known = address();
    await registerUser({ email: known });
    const statements: string[][] = [];
    const counting = (list: string[]) =>
      new Proxy(env.DB, {
        get(target, prop) {
          const value = Reflect.get(target, prop);
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => {
            if (prop === "prepare") list.push(String(args[0]));
            if (prop === "batch") list.push("batch");
            return value.apply(target, args);
          };
        },
      });
    const answers = [];
    const queued: unknown[][] = [];
    for (const email of [known, address()]) {
      const list: string[] = [];
      statements.push(list);
      const queue = capturingQueue();
      queued.push(queue.jobs);
      answers.push(await call("POST", "/password/forgot", { body: { email }, bindings: { DB: counting(list), MAIL_QUEUE: queue.MAIL_QUEUE } }));
    }
    expect(answers[0]!.status).toBe(202);
    expect(answers[1]!.status).toBe(202);
    expect(answers[0]!.text).toBe(answers[1]!.text);
    expect(statements).toEqual([[], []]); // the lookup is the queue consumer's
    const shape = (job: unknown) => Object.keys(job as object).sort();
    expect(queued.map((jobs) => jobs.map(shape))).toEqual([[shape(queued[1]![0])], [shape(queued[0]![0])]]);
  });

  it("a reset whose KV write fails still answers 200 (its link is used up) and finishes the revocation after the answer", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    await box.send("POST", "/password/forgot", { body: { email } });
    const token = box.link(email, "reset-password");
    const res = await box.send("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD }, bindings: { REVOKED: kvPutFailsOnce() } });
    expect(res.status, res.text).toBe(200);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200);
  });

  it("two resets with one link: exactly one wins", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    await box.send("POST", "/password/forgot", { body: { email } });
    const token = box.link(email, "reset-password");
    const results = await Promise.all(
      ["first new secret 1", "second new secret 2"].map((new_password) => call("POST", "/password/reset", { body: { token, new_password } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
    const winner = results[0]!.status === 200 ? "first new secret 1" : "second new secret 2";
    expect((await login(reg.input.username, winner)).status).toBe(200);
  });

  it("a newer reset link leaves the older live; using one ends the other; an expired one is refused; the policy applies", async () => {
    const box = mailbox();
    const email = address();
    await registerUser({ email });
    await box.send("POST", "/password/forgot", { body: { email } });
    const first = box.link(email, "reset-password");
    await box.send("POST", "/password/forgot", { body: { email } });
    const second = box.link(email, "reset-password");
    expect(second).not.toBe(first);
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    expectError(await call("POST", "/password/reset", { body: { token: "A".repeat(43), new_password: NEW_PASSWORD } }), 400, "invalid_link");
    expect(derive).not.toHaveBeenCalled(); // no hash spent on a link that cannot work
    expectError(await call("POST", "/password/reset", { body: { token: second, new_password: "short" } }), 400, "validation_failed");
    expect((await call("POST", "/password/reset", { body: { token: first, new_password: NEW_PASSWORD } })).status).toBe(200);
    expectError(await call("POST", "/password/reset", { body: { token: second, new_password: "other secret 77" } }), 400, "invalid_link");
    await box.send("POST", "/password/forgot", { body: { email } });
    const third = box.link(email, "reset-password");
    await env.DB.prepare("UPDATE account_tokens SET expires_at = ? WHERE purpose = 'reset_password'")
      .bind(Date.now() - 1)
      .run();
    expectError(await call("POST", "/password/reset", { body: { token: third, new_password: NEW_PASSWORD } }), 400, "invalid_link");
  });

  it("a failing mail service is never shown: the answer stays 202, the queue tries again, and a last failure is audited", async () => {
    const email = address();
    await registerUser({ email });
    const queue = capturingQueue();
    const res = await call("POST", "/password/forgot", { body: { email }, bindings: { MAIL_QUEUE: queue.MAIL_QUEUE } });
    expect(res.status).toBe(202);
    const down = mailbox(true).binding;
    const first = await deliverJobs(queue.jobs, { EMAIL: down });
    expect(first.result.retryMessages.map((m) => m.msgId)).toEqual(first.ids); // (the pool does not record the delay)
    const failed = () => env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'mail_failed'").all<{ detail: string }>();
    expect((await failed()).results).toHaveLength(0);
    const last = await deliverJobs(queue.jobs, { EMAIL: down }, 6);
    expect(last.result.explicitAcks).toEqual(last.ids);
    expect((await failed()).results.map((r) => JSON.parse(r.detail))).toEqual([{ purpose: "reset_password", attempts: 6, error: "Error" }]);
  });

  it("a stranger who knows the address can neither end the owner's link nor flood the mailbox", async () => {
    const email = address();
    const reg = await registerUser({ email });
    const box = mailbox();
    await box.send("POST", "/password/forgot", { body: { email } });
    const owners = box.link(email, "reset-password");
    // Requests from anywhere: each answered alike, two more mails, then nothing.
    const statuses = [];
    for (let i = 0; i < 8; i++)
      statuses.push((await box.send("POST", "/password/forgot", { body: { email }, headers: { "cf-connecting-ip": randomIp() } })).status);
    expect(statuses).toEqual(Array(8).fill(202));
    expect(box.sent).toHaveLength(3);
    // The owner's link still works (and so would the ones the stranger triggered: they went to the owner).
    expect((await call("POST", "/password/reset", { body: { token: owners, new_password: NEW_PASSWORD } })).status).toBe(200);
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200);
  });

  it("answers before any lookup: the answer does not wait for the database, and the queue mails the known address only", async () => {
    const email = address();
    await registerUser({ email });
    const { DB: held, release } = d1Held();
    const box = mailbox();
    const queue = capturingQueue();
    const ctx = createExecutionContext();
    for (const to of [email, address()]) {
      const res = await call("POST", "/password/forgot", {
        body: { email: to },
        bindings: { DB: held, EMAIL: box.binding, MAIL_QUEUE: queue.MAIL_QUEUE },
        ctx,
      });
      expect(res.status).toBe(202);
    }
    await waitOnExecutionContext(ctx);
    expect(queue.jobs).toHaveLength(2);
    release();
    await deliverJobs(queue.jobs, { EMAIL: box.binding });
    expect(box.sent.map((m) => m.to)).toEqual([email]);
  });

  it("never puts a token or a link in a log line", async () => {
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const)
      vi.spyOn(console, level).mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(" ")));
    const box = mailbox();
    const email = address();
    await registerUser({ email });
    await box.send("POST", "/password/forgot", { body: { email } });
    const token = box.link(email, "reset-password");
    await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD } });
    vi.restoreAllMocks();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line).not.toContain(token);
      expect(line).not.toContain("reset-password=");
      expect(line).not.toContain(email);
    }
  });
});

describe("email change", () => {
  it("mails a link to the new address and a notice to the old; the address changes only when the link is used", async () => {
    const box = mailbox();
    const old = address();
    const next = address();
    const reg = await registerUser({ email: old });
    const res = await box.send("POST", "/email", { token: reg.access_token, body: { new_email: next, current_password: PASSWORD } });
    expect(res.status, res.text).toBe(202);
    expect(box.sent.map((m) => m.to).sort()).toEqual([next, old].sort());
    expect((await call("GET", "/me", { token: reg.access_token })).body.user.email).toBe(old);
    const token = box.link(next, "confirm-email");
    expect((await call("POST", "/email/confirm", { body: { token, password: PASSWORD } })).status).toBe(200);
    expect((await call("GET", "/me", { token: reg.access_token })).body.user).toMatchObject({ email: next, email_verified: true });
  });

  it("refuses a wrong password, a taken address, and an address taken before the link is used", async () => {
    const box = mailbox();
    const reg = await registerUser({ email: address() });
    const other = await registerUser({ email: address() });
    expectError(
      await box.send("POST", "/email", { token: reg.access_token, body: { new_email: address(), current_password: "wrong password 1" } }),
      401,
      "invalid_credentials",
    );
    expectError(
      await box.send("POST", "/email", { token: reg.access_token, body: { new_email: other.user.email!, current_password: PASSWORD } }),
      409,
      "email_taken",
    );
    const wanted = address();
    await box.send("POST", "/email", { token: reg.access_token, body: { new_email: wanted, current_password: PASSWORD } });
    const token = box.link(wanted, "confirm-email");
    await call("POST", "/register", { body: { username: uniqueName(), email: wanted, password: PASSWORD } });
    expectError(await call("POST", "/email/confirm", { body: { token, password: PASSWORD } }), 409, "email_taken");
  });
});

describe("a link whose batch fails stays usable", () => {
  const failingBatch = () =>
    once(env.DB, "batch", async () => {
      throw new Error("injected: D1 batch failed");
    });

  it("email verification", async () => {
    const box = mailbox();
    const email = address();
    const reg = await box.send("POST", "/register", { body: { username: uniqueName(), email, password: PASSWORD } });
    const token = box.link(email, "verify-email");
    expectError(await call("POST", "/email/verify", { body: { token, password: PASSWORD }, bindings: { DB: failingBatch() } }), 500, "internal_error");
    expect((await call("POST", "/email/verify", { body: { token, password: PASSWORD } })).status).toBe(200);
    expect((await call("GET", "/me", { token: reg.body.access_token })).body.user.email_verified).toBe(true);
  });

  it("email change, and a change to an address taken meanwhile leaves the link usable once it is free", async () => {
    const box = mailbox();
    const reg = await registerUser({ email: address() });
    const wanted = address();
    await box.send("POST", "/email", { token: reg.access_token, body: { new_email: wanted, current_password: PASSWORD } });
    const token = box.link(wanted, "confirm-email");
    expectError(await call("POST", "/email/confirm", { body: { token, password: PASSWORD }, bindings: { DB: failingBatch() } }), 500, "internal_error");
    const squatter = await registerUser({ email: wanted });
    expectError(await call("POST", "/email/confirm", { body: { token, password: PASSWORD } }), 409, "email_taken");
    await env.DB.prepare("DELETE FROM users WHERE id = ?").bind(squatter.user.id).run();
    expect((await call("POST", "/email/confirm", { body: { token, password: PASSWORD } })).status).toBe(200);
    expect((await call("GET", "/me", { token: reg.access_token })).body.user.email).toBe(wanted);
  });

  it("password reset", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    await box.send("POST", "/password/forgot", { body: { email } });
    const token = box.link(email, "reset-password");
    expectError(
      await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD }, bindings: { DB: failingBatch() } }),
      500,
      "internal_error",
    );
    expect((await call("POST", "/password/reset", { body: { token, new_password: NEW_PASSWORD } })).status).toBe(200);
    expect((await login(reg.input.username, NEW_PASSWORD)).status).toBe(200);
  });
});

describe("links end with what they were for", () => {
  it("a change link is single-use, superseded by a newer one, refused once expired", async () => {
    const box = mailbox();
    const reg = await registerUser({ email: address() });
    const target = address();
    await box.send("POST", "/email", { token: reg.access_token, body: { new_email: target, current_password: PASSWORD } });
    const first = box.link(target, "confirm-email");
    const second = address();
    await box.send("POST", "/email", { token: reg.access_token, body: { new_email: second, current_password: PASSWORD } });
    expectError(await call("POST", "/email/confirm", { body: { token: first, password: PASSWORD } }), 400, "invalid_link");
    const token = box.link(second, "confirm-email");
    await env.DB.prepare("UPDATE account_tokens SET expires_at = ? WHERE token_hash != '' AND purpose = 'change_email' AND used_at IS NULL")
      .bind(Date.now() - 1)
      .run();
    expectError(await call("POST", "/email/confirm", { body: { token, password: PASSWORD } }), 400, "invalid_link");
  });

  it("a pending email change (say a hijacker's) dies with a password reset", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    const hijacker = address();
    await box.send("POST", "/email", { token: reg.access_token, body: { new_email: hijacker, current_password: PASSWORD } });
    const change = box.link(hijacker, "confirm-email");
    await box.send("POST", "/password/forgot", { body: { email } });
    expect((await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: NEW_PASSWORD } })).status).toBe(200);
    expectError(await call("POST", "/email/confirm", { body: { token: change, password: PASSWORD } }), 400, "invalid_link");
  });

  it("a link of a disabled account does not work", async () => {
    const box = mailbox();
    const email = address();
    const reg = await registerUser({ email });
    await box.send("POST", "/password/forgot", { body: { email } });
    await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), reg.user.id).run();
    expectError(await call("POST", "/password/reset", { body: { token: box.link(email, "reset-password"), new_password: NEW_PASSWORD } }), 400, "invalid_link");
  });
});

describe("DELETE /me", () => {
  it("deletes the user and their sessions, revokes their tokens, and keeps an audit row without personal data", async () => {
    const reg = await registerUser({ email: address() });
    const other = await login(reg.input.username);
    const res = await call("DELETE", "/me", { token: reg.access_token, body: { current_password: PASSWORD } });
    expect(res.status, res.text).toBe(200);
    for (const s of [reg, other.body]) expectError(await call("GET", "/protected", { token: s.access_token }), 401, "invalid_token");
    expectError(await login(reg.input.username), 401, "invalid_credentials");
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(reg.user.id).first<{ n: number }>())!;
    expect(n).toBe(0);
    const row = await env.DB.prepare("SELECT * FROM audit_events WHERE event = 'account_deleted' AND user_id = ?")
      .bind(reg.user.id)
      .first<Record<string, unknown>>();
    expect(row).toMatchObject({ ip: null, detail: null });
    expect(JSON.stringify(row)).not.toContain(reg.input.username);
  });

  it("takes a step-up on the session's own budget (a stranger's lock never blocks it), and a retry after a failed KV write completes the revocation", async () => {
    const reg = await registerUser();
    const guesser = (await login(reg.input.username)).body;
    // A stranger's wrong logins lock the account: the signed-in owner is not blocked by it.
    for (let i = 0; i < 5; i++) await login(reg.input.username, "wrong password 1");
    expectError(await login(reg.input.username), 429, "rate_limited");
    // Wrong passwords count against the guessing session only: the fifth signs it out.
    for (let i = 0; i < 4; i++)
      expectError(await call("DELETE", "/me", { token: guesser.access_token, body: { current_password: "wrong password 1" } }), 401, "invalid_credentials");
    expectError(await call("DELETE", "/me", { token: guesser.access_token, body: { current_password: "wrong password 1" } }), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: guesser.access_token }), 401, "invalid_token");
    // Sessions of every epoch: one kept across a password change, one from after it.
    expect((await call("POST", "/password", { token: reg.access_token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } })).status).toBe(200);
    await env.DB.prepare("UPDATE users SET locked_until = ? WHERE id = ?")
      .bind(Date.now() - 1, reg.user.id)
      .run();
    const later = await login(reg.input.username, NEW_PASSWORD);
    const REVOKED = kvPutFailsOnce();
    expectError(
      await call("DELETE", "/me", { token: reg.access_token, body: { current_password: NEW_PASSWORD }, bindings: { REVOKED } }),
      503,
      "service_unavailable",
    );
    expect((await call("DELETE", "/me", { token: reg.access_token, body: { current_password: NEW_PASSWORD }, bindings: { REVOKED } })).status).toBe(200);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    expectError(await call("GET", "/protected", { token: later.body.access_token }), 401, "invalid_token");
  });
});

describe("admin user management", () => {
  it("shows one user; disabling ends every session and refuses login, refresh and Bearer calls", async () => {
    const admin = await adminToken();
    const reg = await registerUser();
    const shown = await call("GET", `/admin/users/${reg.user.id}`, { token: admin });
    expect(shown.body).toMatchObject({ user: { id: reg.user.id }, disabled: false });
    const res = await call("PATCH", `/admin/users/${reg.user.id}`, { token: admin, body: { disabled: true } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.disabled).toBe(true);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    expectError(await login(reg.input.username), 403, "account_disabled");
    const row = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'admin_user_updated' AND user_id = ?")
      .bind(reg.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(row!.detail)).toMatchObject({ by: expect.any(String), disabled: true });
    // And back.
    await call("PATCH", `/admin/users/${reg.user.id}`, { token: admin, body: { disabled: false } });
    expect((await login(reg.input.username)).status).toBe(200);
  });

  it("refuses a login and a refresh for a user disabled meanwhile (in the same statement as the session write)", async () => {
    const reg = await registerUser();
    // Disabled while the login's password was being checked.
    const DB = d1WriteBeforeBatch(2, "UPDATE users SET disabled_at = ? WHERE id = ?", Date.now(), reg.user.id);
    expectError(await call("POST", "/login", { body: { username: reg.input.username, password: PASSWORD }, bindings: { DB } }), 403, "account_disabled");
    // Its old session is not even revoked in D1 here: the refresh still refuses a disabled user.
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
  });

  it("a role change ends the user's sessions, so it takes effect at once", async () => {
    const admin = await adminToken();
    const reg = await registerUser();
    const res = await call("PATCH", `/admin/users/${reg.user.id}`, { token: admin, body: { roles: ["user", "admin"], current_password: PASSWORD } });
    expect(res.body.user.roles).toEqual(["user", "admin"]);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
    const again = await login(reg.input.username);
    expect(again.body.user.roles).toEqual(["user", "admin"]);
    expectError(await refreshWith(reg.refresh_token), 401, "invalid_token");
    const row = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'admin_user_updated' AND user_id = ?")
      .bind(reg.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(row!.detail)).toMatchObject({ roles: "user,admin", by: expect.any(String) });
  });

  it("an admin change whose KV write fails answers 503, is audited, and repeating it completes it", async () => {
    const admin = await adminToken();
    const reg = await registerUser();
    const REVOKED = kvPutFailsOnce();
    expectError(
      await call("PATCH", `/admin/users/${reg.user.id}`, { token: admin, body: { disabled: true }, bindings: { REVOKED } }),
      503,
      "service_unavailable",
    );
    expect(
      (await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE event = 'admin_user_updated' AND user_id = ?")
        .bind(reg.user.id)
        .first<{ n: number }>())!.n,
    ).toBe(1);
    expect((await call("PATCH", `/admin/users/${reg.user.id}`, { token: admin, body: { disabled: true }, bindings: { REVOKED } })).status).toBe(200);
    expectError(await call("GET", "/protected", { token: reg.access_token }), 401, "invalid_token");
  });

  it("refuses an admin removing their own admin role or disabling themselves; 404 for an unknown id; 403 for a plain user", async () => {
    const admin = await adminToken();
    const me = (await call("GET", "/me", { token: admin })).body.user.id;
    expectError(await call("PATCH", `/admin/users/${me}`, { token: admin, body: { roles: ["user"], current_password: PASSWORD } }), 400, "validation_failed");
    expectError(await call("PATCH", `/admin/users/${me}`, { token: admin, body: { disabled: true } }), 400, "validation_failed");
    expectError(await call("PATCH", "/admin/users/nobody", { token: admin, body: { disabled: true } }), 404, "not_found");
    expectError(await call("GET", "/admin/users/nobody", { token: admin }), 404, "not_found");
    expectError(await call("PATCH", `/admin/users/${me}`, { token: admin, body: {} }), 400, "validation_failed");
    const plain = await registerUser();
    expectError(await call("PATCH", `/admin/users/${plain.user.id}`, { token: plain.access_token, body: { disabled: true } }), 403, "forbidden");
  });
});

describe("at least one active admin always remains", () => {
  /** Two admins, and the id of each: the only active admins of this test file's database. */
  async function onlyAdmins() {
    await env.DB.prepare(`UPDATE users SET roles = '["user"]'`).run();
    const a = await registerUser();
    const b = await registerUser();
    const tokens = [];
    for (const u of [a, b]) {
      await env.DB.prepare(`UPDATE users SET roles = '["user","admin"]' WHERE id = ?`).bind(u.user.id).run();
      tokens.push((await login(u.input.username)).body.access_token as string);
    }
    return { a: { id: a.user.id, token: tokens[0]! }, b: { id: b.user.id, token: tokens[1]! } };
  }

  it("two admins disabling each other at once: exactly one succeeds", async () => {
    const { a, b } = await onlyAdmins();
    const results = await Promise.all([
      call("PATCH", `/admin/users/${b.id}`, { token: a.token, body: { disabled: true } }),
      call("PATCH", `/admin/users/${a.id}`, { token: b.token, body: { disabled: true } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 403]);
    const active = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE disabled_at IS NULL AND roles LIKE '%admin%'").first<{ n: number }>();
    expect(active!.n).toBe(1);
  });

  it("the last active admin cannot be demoted, disabled or deleted; with another admin they can", async () => {
    const { a, b } = await onlyAdmins();
    expect((await call("PATCH", `/admin/users/${b.id}`, { token: a.token, body: { roles: ["user"], current_password: PASSWORD } })).status).toBe(200);
    const freshA = (await login((await call("GET", "/me", { token: a.token })).body.user.username)).body.access_token;
    const refused = await call("DELETE", "/me", { token: freshA, body: { current_password: PASSWORD } });
    expectError(refused, 409, "last_admin");
    expect((await call("GET", "/protected", { token: freshA })).status).toBe(200); // nothing was deleted
    // With another active admin, a may go.
    await env.DB.prepare(`UPDATE users SET roles = '["user","admin"]' WHERE id = ?`).bind(b.id).run();
    expect((await call("DELETE", "/me", { token: freshA, body: { current_password: PASSWORD } })).status).toBe(200);
  });

  it("an admin whose role was removed meanwhile is refused, though the token still carries the role", async () => {
    const { a, b } = await onlyAdmins();
    const plain = await registerUser();
    await env.DB.prepare(`UPDATE users SET roles = '["user"]' WHERE id = ?`).bind(a.id).run();
    const res = await call("PATCH", `/admin/users/${plain.user.id}`, { token: a.token, body: { disabled: true } });
    expectError(res, 403, "forbidden");
    const audited = await env.DB.prepare("SELECT detail FROM audit_events WHERE event = 'admin_refused' AND user_id = ?")
      .bind(plain.user.id)
      .first<{ detail: string }>();
    expect(JSON.parse(audited!.detail)).toMatchObject({ by: a.id, reason: "forbidden" });
    expect((await call("PATCH", `/admin/users/${plain.user.id}`, { token: b.token, body: { disabled: true } })).status).toBe(200);
  });
});

describe("REGISTRATION closed still lets existing users recover", () => {
  it("password reset works with sign-up closed", async () => {
    const box = mailbox();
    const email = address();
    await registerUser({ email });
    expect((await box.send("POST", "/password/forgot", { body: { email }, bindings: { REGISTRATION: "closed" } as Partial<Env> })).status).toBe(202);
    expect(box.sent).toHaveLength(1);
  });
});
