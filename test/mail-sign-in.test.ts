import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { accessFields } from "../src/config-access";
import { housekeeping } from "../src/cron";
import { createKeyAs, keyRow } from "./api-keys-setup";
import {
  awayFromStepEdge,
  call,
  capturingQueue,
  codeAt,
  d1Usage,
  decodeJwtPart,
  expectError,
  login,
  mailbox,
  registerUser,
  uniqueName,
  userWithTotp,
} from "./helpers";
import { createOrg } from "./orgs";

/**
 * Sign-in and sign-up by mail (docs/mail-sign-in.md, issue 31 item 1): one message with a link and an
 * 8-digit code. The request answers the same for every address (it only queues); only a POST uses a
 * message; a code works from any device within its attempts; a newer message ends the older ones.
 */

const address = () => `${uniqueName("mail")}@example.com`;
const count = async (sql: string, ...args: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...args)
    .first<{ n: number }>())!.n;
const userRow = (id: string) =>
  env.DB.prepare("SELECT username, email_verified_at, password_hash, disabled_at FROM users WHERE id = ?")
    .bind(id)
    .first<{ username: string; email_verified_at: number | null; password_hash: string }>();

/** A mailbox that asks for a sign-in mail and reads the link's token and the code of the newest one. */
function inbox() {
  const box = mailbox();
  const ask = (email: string, opts: Parameters<typeof box.send>[2] = {}) => box.send("POST", "/login/email", { ...opts, body: { email } });
  const code = (to: string) => {
    const mail = box.sent.filter((m) => m.to === to).at(-1);
    const found = /enter this code where you asked: ([0-9]{8})/.exec(mail?.text ?? "")?.[1];
    if (!found) throw new Error(`no sign-in code mailed to ${to}`);
    return found;
  };
  return { ...box, ask, code, token: (to: string) => box.link(to, "mail-sign-in") };
}

const withLink = (token: string) => call("POST", "/login/email/link", { body: { token } });
const withCode = (email: string, code: string) => call("POST", "/login/email/code", { body: { email, code } });
const amrOf = (accessToken: string) => decodeJwtPart(accessToken, 1).amr;

describe("POST /login/email: the same answer, work and time for every address", () => {
  it("an account, no account, a disabled account: one job each, the same shape, no D1, the same 202", async () => {
    const known = address();
    await registerUser({ email: known });
    const disabled = address();
    const off = await registerUser({ email: disabled });
    await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), off.user.id).run();
    const answers: string[] = [];
    const jobs: Record<string, unknown>[] = [];
    for (const email of [known, address(), disabled]) {
      const queue = capturingQueue();
      const usage = await d1Usage("POST", "/login/email", { body: { email }, bindings: { MAIL_QUEUE: queue.MAIL_QUEUE } });
      expect(usage.n, "no D1 on the request's path").toBe(0);
      answers.push(`${usage.res.status} ${usage.res.text}`);
      expect(queue.jobs).toHaveLength(1);
      jobs.push(queue.jobs[0] as Record<string, unknown>);
    }
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toMatch(/^202 /);
    expect(jobs.map((j) => Object.keys(j).sort().join())).toEqual(Array(3).fill(Object.keys(jobs[0]!).sort().join()));
    expect(jobs.map((j) => j.kind)).toEqual(["mail_sign_in", "mail_sign_in", "mail_sign_in"]);
  });

  it("mails a sign-in to an account, a sign-up to an unknown address, nothing to a disabled account", async () => {
    const m = inbox();
    const known = address();
    await registerUser({ email: known });
    const unknown = address();
    const disabled = address();
    const off = await registerUser({ email: disabled });
    await env.DB.prepare("UPDATE users SET disabled_at = ? WHERE id = ?").bind(Date.now(), off.user.id).run();
    for (const email of [known, unknown, disabled]) expect((await m.ask(email)).status).toBe(202);
    expect(m.sent.find((s) => s.to === known)?.subject).toBe("Sign in to Edge Auth");
    expect(m.sent.find((s) => s.to === unknown)?.subject).toBe("Create your Edge Auth account");
    expect(m.sent.filter((s) => s.to === disabled)).toHaveLength(0);
    expect(await count("SELECT count(*) AS n FROM mail_sign_ins WHERE email = ?", disabled)).toBe(0);
    // Only hashes are stored: neither the token nor the code is in the row.
    const row = await env.DB.prepare("SELECT * FROM mail_sign_ins WHERE email = ?").bind(known).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(m.token(known));
    expect(JSON.stringify(row)).not.toContain(m.code(known));
  });

  it('REGISTRATION "closed": an unknown address gets nothing, with the same answer', async () => {
    const m = inbox();
    const unknown = address();
    const known = address();
    await registerUser({ email: known });
    const closed = { REGISTRATION: "closed" } as Partial<Env>;
    const a = await m.ask(unknown, { bindings: closed });
    const b = await m.ask(known, { bindings: closed });
    expect(`${a.status} ${a.text}`).toBe(`${b.status} ${b.text}`);
    expect(m.sent.filter((s) => s.to === unknown)).toHaveLength(0);
    expect(m.sent.filter((s) => s.to === known)).toHaveLength(1);
  });

  it("at most MAIL_RECIPIENT_DAILY (5) messages to one address a day; beyond it nothing is made or mailed, the answer the same", async () => {
    const m = inbox();
    const email = address();
    await registerUser({ email });
    const answers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await m.ask(i % 2 ? email.toUpperCase() : email);
      answers.add(`${res.status} ${res.text}`);
    }
    expect(answers.size).toBe(1);
    expect(m.sent.filter((s) => s.to === email)).toHaveLength(5);
    expect(await count("SELECT count(*) AS n FROM mail_sign_ins WHERE email = ?", email)).toBe(5);
    expect(await count("SELECT count(*) AS n FROM audit_events WHERE event = 'mail_refused' AND detail LIKE '%mail_sign_in%'")).toBeGreaterThan(0);
  });

  it("Turnstile on (TURNSTILE_SECRET set): no token, 400 turnstile_required, nothing queued", async () => {
    const queue = capturingQueue();
    const res = await call("POST", "/login/email", {
      body: { email: address() },
      bindings: { TURNSTILE_SECRET: "test-secret", MAIL_QUEUE: queue.MAIL_QUEUE } as Partial<Env>,
    });
    expectError(res, 400, "turnstile_required");
    expect(queue.jobs).toHaveLength(0);
  });

  it('MAIL_SIGN_IN "off": every route answers 404', async () => {
    const off = { MAIL_SIGN_IN: "off" } as Partial<Env>;
    expectError(await call("POST", "/login/email", { body: { email: address() }, bindings: off }), 404, "not_found");
    expectError(await call("POST", "/login/email/link", { body: { token: "x".repeat(43) }, bindings: off }), 404, "not_found");
    expectError(await call("POST", "/login/email/code", { body: { email: address(), code: "12345678" }, bindings: off }), 404, "not_found");
  });
});

describe("the link: only a POST uses it", () => {
  it("GET and HEAD of the link's URL and of any API path with the token leave it valid; the POST then signs in (amr email)", async () => {
    const m = inbox();
    const email = address();
    const reg = await registerUser({ email });
    await m.ask(email);
    const token = m.token(email);
    const link = m.sent.at(-1)!.text.match(/http\S+#mail-sign-in=\S+/)![0];
    expect(link).toBe(`http://localhost:5173/#mail-sign-in=${token}`);
    for (const method of ["GET", "HEAD"]) {
      for (const path of [
        "/",
        `/?mail-sign-in=${token}`,
        `/login/email/link?token=${token}`,
        `/login/email?token=${token}`,
        `/login/email/code?token=${token}`,
      ]) {
        const res = await call(method, path);
        expect(res.body?.access_token, `${method} ${path}`).toBeUndefined(); // any answer but a sign-in; the row below is what matters
      }
    }
    expect(await count("SELECT count(*) AS n FROM mail_sign_ins WHERE email = ? AND used_at IS NULL", email)).toBe(1);
    const res = await withLink(token);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.id).toBe(reg.user.id);
    expect(amrOf(res.body.access_token)).toEqual(["email"]);
    expect((await call("GET", "/protected", { token: res.body.access_token })).status).toBe(200);
  });

  it("D1 failing once while the session is written: 503 with Retry-After, no session, the link spent; a new mail signs in", async () => {
    const m = inbox();
    const email = address();
    const reg = await registerUser({ email });
    await m.ask(email);
    const sessionsBefore = await count("SELECT count(*) AS n FROM sessions WHERE user_id = ?", reg.user.id);
    let failed = 0;
    const DB = new Proxy(env.DB, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
        return async (stmts: D1PreparedStatement[]) => {
          if (failed++ === 0) throw new Error("D1_ERROR: D1 DB is overloaded. Too many requests queued.");
          return target.batch(stmts);
        };
      },
    });
    const token = m.token(email);
    const res = await call("POST", "/login/email/link", { body: { token }, bindings: { DB } });
    expectError(res, 503, "service_unavailable");
    expect(res.headers.get("retry-after")).toBeTruthy();
    expect(failed).toBe(1);
    expect(await count("SELECT count(*) AS n FROM sessions WHERE user_id = ?", reg.user.id)).toBe(sessionsBefore);
    // The message was used by the statement before the failure: a link is good once, whatever followed.
    expectError(await withLink(token), 400, "invalid_link");
    await m.ask(email);
    expect((await withLink(m.token(email))).status).toBe(200);
  });

  it("single use; of two racing POSTs exactly one signs in", async () => {
    const m = inbox();
    const email = address();
    await registerUser({ email });
    await m.ask(email);
    const token = m.token(email);
    const both = await Promise.all([withLink(token), withLink(token)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 400]);
    expectError(both.find((r) => r.status === 400)!, 400, "invalid_link");
    expectError(await withLink(token), 400, "invalid_link");
  });

  it("an unknown or malformed token is invalid_link", async () => {
    expectError(await withLink("A".repeat(43)), 400, "invalid_link");
    expectError(await withLink("short"), 400, "invalid_link");
  });

  it("cookie mode: the refresh token is set as a cookie, not returned", async () => {
    const m = inbox();
    const email = address();
    await registerUser({ email });
    await m.ask(email);
    const res = await call("POST", "/login/email/link", { body: { token: m.token(email), use_cookie: true }, headers: { origin: "http://localhost:5173" } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.refresh_token).toBeUndefined();
    expect(res.headers.get("set-cookie")).toMatch(/HttpOnly/);
  });
});

describe("the code: any device, a small budget per message", () => {
  it("works with the address (any case, spaces ignored); the link of the same message is then used too", async () => {
    const m = inbox();
    const email = address();
    const reg = await registerUser({ email });
    await m.ask(email);
    const code = m.code(email);
    const res = await withCode(email.toUpperCase(), `${code.slice(0, 4)} ${code.slice(4)}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.id).toBe(reg.user.id);
    expect(amrOf(res.body.access_token)).toEqual(["email"]);
    expectError(await withLink(m.token(email)), 400, "invalid_link");
    expectError(await withCode(email, code), 401, "invalid_mail_code");
  });

  it("a code (or link) from an earlier message is refused once a newer one went; the newer one works", async () => {
    const m = inbox();
    const email = address();
    await registerUser({ email });
    await m.ask(email);
    const [firstCode, firstToken] = [m.code(email), m.token(email)];
    await m.ask(email);
    const secondCode = m.code(email);
    expect(secondCode).not.toBe(firstCode);
    expectError(await withCode(email, firstCode), 401, "invalid_mail_code");
    expectError(await withLink(firstToken), 400, "invalid_link");
    expect((await withCode(email, secondCode)).status).toBe(200);
  });

  it("MAIL_CODE_ATTEMPTS (5) wrong codes end the code: the right code is then refused, the same 401; the link still works", async () => {
    const m = inbox();
    const email = address();
    await registerUser({ email });
    await m.ask(email);
    const right = m.code(email);
    const wrong = right === "00000000" ? "11111111" : "00000000";
    const answers = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await withCode(email, wrong);
      answers.add(`${res.status} ${res.text}`);
    }
    const dead = await withCode(email, right);
    answers.add(`${dead.status} ${dead.text}`);
    expect(answers.size, [...answers].join("\n")).toBe(1);
    expectError(dead, 401, "invalid_mail_code");
    expect(await count("SELECT attempts AS n FROM mail_sign_ins WHERE email = ?", email)).toBe(5);
    // A stranger who knows the address can end the code, never the link the owner holds.
    expect((await withLink(m.token(email))).status).toBe(200);
  });

  it("four wrong codes leave the fifth try to the right one", async () => {
    const m = inbox();
    const email = address();
    await registerUser({ email });
    await m.ask(email);
    const right = m.code(email);
    const wrong = right === "00000000" ? "11111111" : "00000000";
    for (let i = 0; i < 4; i++) expectError(await withCode(email, wrong), 401, "invalid_mail_code");
    expect((await withCode(email, right)).status).toBe(200);
  });

  it("an expired message is refused, by code and by link; no message at all is the same 401", async () => {
    const m = inbox();
    const email = address();
    await registerUser({ email });
    await m.ask(email);
    await env.DB.prepare("UPDATE mail_sign_ins SET expires_at = ? WHERE email = ?")
      .bind(Date.now() - 1, email)
      .run();
    const expired = await withCode(email, m.code(email));
    expectError(expired, 401, "invalid_mail_code");
    expectError(await withLink(m.token(email)), 400, "invalid_link");
    const none = await withCode(address(), "12345678");
    expect(none.text).toBe(expired.text);
  });
});

describe("what a used message comes to", () => {
  it("TOTP on: the second step is asked, and the session's amr is email, otp, mfa", async () => {
    const m = inbox();
    const email = address();
    const reg = await userWithTotp(email);
    await m.ask(email);
    const first = await withCode(email, m.code(email));
    expect(first.status, first.text).toBe(200);
    expect(first.body.mfa_required).toBe(true);
    expect(first.body.access_token).toBeUndefined();
    await awayFromStepEdge();
    const done = await call("POST", "/login/mfa", { body: { challenge: first.body.challenge, code: await codeAt(reg.secret) } });
    expect(done.status, done.text).toBe(200);
    expect(amrOf(done.body.access_token)).toEqual(["email", "otp", "mfa"]);
    // TOTP was set up before the address was proved: the mailbox alone handed nothing over.
    expect((await login(reg.input.username)).body.mfa_required).toBe(true);
  });

  it("a sign-up mail creates an account without a username or password, its address verified, signed in", async () => {
    const m = inbox();
    const email = address();
    await m.ask(email);
    const res = await withLink(m.token(email));
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ username: null, email, email_verified: true, roles: ["user"] });
    expect(amrOf(res.body.access_token)).toEqual(["email"]);
    expect(decodeJwtPart(res.body.access_token, 1)).not.toHaveProperty("username");
    const row = await userRow(res.body.user.id);
    expect(row).toMatchObject({ username: "", password_hash: "" });
    expect(row!.email_verified_at).not.toBeNull();
    // The next mail to the address is a sign-in to that account.
    await m.ask(email);
    const again = await withCode(email, m.code(email));
    expect(again.body.user.id).toBe(res.body.user.id);
  });

  it("a sign-up mail used after an account took the address: 409 email_taken, nothing joined", async () => {
    const m = inbox();
    const email = address();
    await m.ask(email);
    const squatter = await registerUser({ email });
    expectError(await withLink(m.token(email)), 409, "email_taken");
    expect((await login(squatter.input.username)).status).toBe(200);
  });

  it("registration closed after a sign-up mail went: 403 registration_closed, no account", async () => {
    const m = inbox();
    const email = address();
    await m.ask(email);
    const res = await call("POST", "/login/email/link", { body: { token: m.token(email) }, bindings: { REGISTRATION: "closed" } as Partial<Env> });
    expectError(res, 403, "registration_closed");
    expect(await count("SELECT count(*) AS n FROM users WHERE email = ?", email)).toBe(0);
  });

  it("an account whose address was proved keeps its password and sessions", async () => {
    const m = inbox();
    const email = address();
    const reg = await registerUser({ email });
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?").bind(Date.now(), reg.user.id).run();
    await m.ask(email);
    expect((await withCode(email, m.code(email))).status).toBe(200);
    expect((await login(reg.input.username)).status).toBe(200);
    expect((await call("GET", "/protected", { token: reg.access_token })).status).toBe(200);
  });

  it("pre-hijack: an account registered earlier with the owner's address (never proved) is handed to the mailbox; its creator's password, sessions and keys end", async () => {
    const m = inbox();
    const email = address();
    const squatter = await registerUser({ email });
    // The squatter built an organization and gave it a key: the key ends with the hand-over.
    const orgId = await createOrg(squatter.access_token);
    const made = await createKeyAs(squatter.access_token, { org_id: orgId, scopes: ["org:read"] });
    expect(made.status, made.text).toBe(201);
    await m.ask(email);
    expect(m.sent.at(-1)!.text).toMatch(/never confirmed it.*hands the account to this mailbox/s);
    const res = await withLink(m.token(email));
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ id: squatter.user.id, email, email_verified: true });
    expectError(await login(squatter.input.username), 401, "invalid_credentials");
    expectError(await call("GET", "/protected", { token: squatter.access_token }), 401, "invalid_token");
    expectError(await call("POST", "/refresh", { body: { refresh_token: squatter.refresh_token } }), 401, "invalid_token");
    expect((await call("GET", "/protected", { token: res.body.access_token })).status).toBe(200);
    const row = await userRow(squatter.user.id);
    expect(row!.password_hash).toBe("");
    expect(row!.email_verified_at).not.toBeNull();
    expect((await keyRow(made.body.key.id))!.revoked_at).not.toBeNull();
  });

  it("a message to an address that moved to another account since proves nothing there", async () => {
    const m = inbox();
    const email = address();
    const reg = await registerUser({ email });
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?").bind(Date.now(), reg.user.id).run();
    await m.ask(email);
    await env.DB.prepare("UPDATE users SET email = ? WHERE id = ?").bind(address(), reg.user.id).run();
    expectError(await withCode(email, m.code(email)), 401, "invalid_mail_code");
  });
});

describe("MAIL_SIGN_IN_TTL", () => {
  it("is at most 600 s (an out-of-band code lives at most 10 minutes): 601 is a configuration error", () => {
    const ttl = z.object({ MAIL_SIGN_IN_TTL: accessFields.MAIL_SIGN_IN_TTL });
    expect(ttl.parse({}).MAIL_SIGN_IN_TTL).toBe(600);
    expect(ttl.safeParse({ MAIL_SIGN_IN_TTL: "600" }).success).toBe(true);
    expect(ttl.safeParse({ MAIL_SIGN_IN_TTL: "601" }).success).toBe(false);
  });

  it("a message lives MAIL_SIGN_IN_TTL from when it was made", async () => {
    const m = inbox();
    const email = address();
    await m.ask(email, { bindings: { MAIL_SIGN_IN_TTL: "120" } as Partial<Env> });
    const row = await env.DB.prepare("SELECT created_at, expires_at FROM mail_sign_ins WHERE email = ?")
      .bind(email)
      .first<{ created_at: number; expires_at: number }>();
    expect(row!.expires_at - row!.created_at).toBe(120_000);
  });
});

describe("housekeeping", () => {
  it("the daily job removes messages past their expiry, used or not, and keeps live ones", async () => {
    const m = inbox();
    const [old, live] = [address(), address()];
    await m.ask(old);
    await m.ask(live);
    await env.DB.prepare("UPDATE mail_sign_ins SET expires_at = ? WHERE email = ?")
      .bind(Date.now() - 1000, old)
      .run();
    const { mailSignIns } = await housekeeping(env);
    expect(mailSignIns).toBeGreaterThanOrEqual(1);
    expect(await count("SELECT count(*) AS n FROM mail_sign_ins WHERE email = ?", old)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM mail_sign_ins WHERE email = ?", live)).toBe(1);
    expect((await withCode(live, m.code(live))).status).toBe(200);
  });
});
