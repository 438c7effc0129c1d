import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { mailboxOf, mailCount } from "../src/auth/mail/budget";
import { getConfig } from "../src/config";
import { housekeeping } from "../src/cron";
import { getDb } from "../src/db/client";
import { countMail } from "../src/db/mail-sends";
import { sha256Base64Url } from "../src/encoding";
import { call, d1Usage, mailbox, PASSWORD, registerUser, uniqueName } from "./helpers";

/**
 * The per-recipient mail budget (src/auth/mail/budget.ts, docs/security.md "mail turned against the
 * owner"): every mail a third party can cause counts against MAIL_RECIPIENT_DAILY (5 in the tests) for
 * its recipient and purpose in any 24 hours; beyond it nothing is mailed, the refusal is audited
 * without the address, and the answer is the one a mailed request gets.
 */

const DAILY = Number(env.MAIL_RECIPIENT_DAILY);
const address = () => `${uniqueName("budget")}@example.com`;
// The edge's per-account and per-client mail limit (5 a minute) would stop these loops first: the
// budget under test is the one that holds over a day.
const noEdgeLimit = { MAIL_LIMITER: { limit: async () => ({ success: true }) } as unknown as RateLimit };
const count = async (sql: string, ...args: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...args)
    .first<{ n: number }>())!.n;
const refusals = (purpose: string) =>
  count("SELECT count(*) AS n FROM audit_events WHERE event = 'mail_refused' AND detail LIKE ?", `%"purpose":"${purpose}"%`);

describe("mail a stranger can cause", () => {
  it("one account repeating POST /email for a stranger's address mails it at most MAIL_RECIPIENT_DAILY times, with the same answers", async () => {
    expect(DAILY).toBe(5);
    const box = mailbox();
    const requester = await registerUser(); // no address of its own: no notices in the count
    const stranger = address();
    const answers = [];
    for (let i = 0; i < 15; i++)
      answers.push(
        await box.send("POST", "/email", { token: requester.access_token, body: { new_email: stranger, current_password: PASSWORD }, bindings: noEdgeLimit }),
      );
    // The case: 15 mails in a couple of minutes on main.
    expect(box.sent.filter((m) => m.to === stranger)).toHaveLength(DAILY);
    expect(new Set(answers.map((a) => `${a.status} ${a.text}`))).toEqual(new Set([`202 ${answers[0]!.text}`]));
    // Refused: audited by purpose and account, never with the address.
    const rows = await env.DB.prepare("SELECT user_id, detail FROM audit_events WHERE event = 'mail_refused'").all<{ user_id: string; detail: string }>();
    expect(rows.results.filter((r) => r.user_id === requester.user.id)).toHaveLength(15 - DAILY);
    for (const r of rows.results) expect(r.detail).not.toContain("@");
    // A refused request changes nothing: the last link that went out still works.
    expect((await call("POST", "/email/confirm", { token: requester.access_token, body: { token: box.link(stranger, "confirm-email") } })).status).toBe(200);
  });

  it("variants of one mailbox share its budget: +tags, and Gmail's dots and googlemail.com", async () => {
    const box = mailbox();
    const requester = await registerUser();
    const name = uniqueName("victim").replace(/_/g, "");
    const variants = Array.from({ length: 15 }, (_, i) =>
      i % 3 === 0 ? `${name}+${i}@gmail.com` : i % 3 === 1 ? `${name.slice(0, 3)}.${name.slice(3)}+x${i}@gmail.com` : `${name}+y${i}@googlemail.com`,
    );
    for (const to of variants)
      expect(
        (await box.send("POST", "/email", { token: requester.access_token, body: { new_email: to, current_password: PASSWORD }, bindings: noEdgeLimit }))
          .status,
      ).toBe(202);
    expect(box.sent.filter((m) => variants.includes(m.to))).toHaveLength(DAILY);
    expect(mailboxOf("A.Lice+news@GoogleMail.com")).toBe("alice@gmail.com");
    expect(mailboxOf("a.lice+news@example.com")).toBe("a.lice@example.com"); // dots matter elsewhere
  });

  it("the budget is the recipient's: a second account cannot mail the address once the first spent it", async () => {
    const box = mailbox();
    const stranger = address();
    const first = await registerUser();
    for (let i = 0; i < DAILY; i++)
      await box.send("POST", "/email", { token: first.access_token, body: { new_email: stranger, current_password: PASSWORD }, bindings: noEdgeLimit });
    const second = await registerUser();
    const res = await box.send("POST", "/email", { token: second.access_token, body: { new_email: stranger, current_password: PASSWORD } });
    expect(res.status).toBe(202);
    expect(box.sent.filter((m) => m.to === stranger)).toHaveLength(DAILY);
  });

  it("resets by address: at most MAIL_RECIPIENT_DAILY a day, even when each link ends before the next request", async () => {
    const box = mailbox();
    const owner = await registerUser({ email: address() });
    const to = owner.user.email!;
    for (let i = 0; i < DAILY + 2; i++) {
      expect((await box.send("POST", "/password/forgot", { body: { email: to.toUpperCase() }, bindings: noEdgeLimit })).status).toBe(202);
      // The three-live-links cap would stop a stranger after three: end the links, as expiry does.
      await env.DB.prepare("UPDATE account_tokens SET used_at = ? WHERE user_id = ? AND purpose = 'reset_password'").bind(Date.now(), owner.user.id).run();
    }
    expect(box.sent.filter((m) => m.to === to && m.subject === "Reset your password")).toHaveLength(DAILY);
    expect(await refusals("reset_password")).toBeGreaterThanOrEqual(2);
  });

  it("sign-ups with someone's address: the verification mails count too (register, delete, register again)", async () => {
    const box = mailbox();
    const victim = address();
    for (let i = 0; i < DAILY + 1; i++) {
      const reg = await box.send("POST", "/register", { body: { username: uniqueName(), email: victim, password: PASSWORD } });
      expect(reg.status, reg.text).toBe(201);
      expect((await call("DELETE", "/me", { token: reg.body.access_token, body: { current_password: PASSWORD } })).status).toBe(200);
    }
    expect(box.sent.filter((m) => m.to === victim)).toHaveLength(DAILY);
    expect(await refusals("verify_email")).toBeGreaterThanOrEqual(1);
  });

  it("notices to an address nobody proved count (a squatter's account); to a proved address they always go", async () => {
    const box = mailbox();
    // A squatter registered with the victim's address and changes its own password again and again.
    const squatter = await registerUser({ email: address() });
    let password = PASSWORD;
    for (let i = 0; i < DAILY + 2; i++) {
      const next = `${PASSWORD} ${i}`;
      const res = await box.send("POST", "/password", { token: squatter.access_token, body: { current_password: password, new_password: next } });
      expect(res.status, res.text).toBe(200);
      password = next;
    }
    const notices = (to: string) => box.sent.filter((m) => m.to === to && m.subject === "A sign-in setting of your account changed");
    expect(notices(squatter.user.email!)).toHaveLength(DAILY);

    // The owner of a proved address: every budget of that address spent by strangers, and still told.
    const owner = await registerUser({ email: address() });
    await env.DB.prepare("UPDATE users SET email_verified_at = ? WHERE id = ?").bind(Date.now(), owner.user.id).run();
    const db = getDb(env.DB);
    for (const purpose of ["verify_email", "reset_password", "change_email", "security_notice"] as const)
      for (let i = 0; i < DAILY; i++) await countMail(db, await mailCount(getConfig(env), owner.user.email!, purpose, new Date()));
    const changed = await box.send("POST", "/password", { token: owner.access_token, body: { current_password: PASSWORD, new_password: `${PASSWORD} new` } });
    expect(changed.status).toBe(200);
    expect(notices(owner.user.email!)).toHaveLength(1);
  });
});

describe("the count", () => {
  it("cannot be exceeded by concurrent mails: one conditional statement each", async () => {
    const db = getDb(env.DB);
    const to = address();
    const config = getConfig(env);
    const results = await Promise.all(Array.from({ length: 12 }, async () => countMail(db, await mailCount(config, to, "reset_password", new Date()))));
    expect(results.filter((r) => r.length === 1)).toHaveLength(DAILY);
    // A mail counted once (a retry with its key) is not counted again, nor refused for being counted.
    const m = await mailCount(config, address(), "reset_password", new Date(), "retry-key");
    expect(await countMail(db, m)).toHaveLength(1);
    expect(await countMail(db, m)).toHaveLength(0);
    expect(await count("SELECT count(*) AS n FROM mail_sends WHERE id = 'retry-key'")).toBe(1);
  });

  it("keeps no address: the recipient is a keyed hash of the lower-cased address", async () => {
    const to = address();
    const box = mailbox();
    const requester = await registerUser();
    await box.send("POST", "/email", { token: requester.access_token, body: { new_email: to, current_password: PASSWORD } });
    const rows = await env.DB.prepare("SELECT * FROM mail_sends").all<Record<string, unknown>>();
    const dump = JSON.stringify(rows.results);
    expect(dump).not.toContain(to.split("@")[0]);
    expect(dump).not.toContain(await sha256Base64Url(to)); // not a plain hash anyone could compute from a guess
    const mixedCase = await mailCount(getConfig(env), to.toUpperCase(), "change_email", new Date());
    expect(rows.results.some((r) => r.recipient === mixedCase.recipient)).toBe(true);
  });

  it("adds no round trip to POST /email (the count is in its batch)", async () => {
    const reg = await registerUser();
    const usage = await d1Usage("POST", "/email", { token: reg.access_token, body: { new_email: address(), current_password: PASSWORD } });
    expect(usage.res.status).toBe(202);
    expect(usage.n).toBe(ROUND_TRIPS_POST_EMAIL);
  });

  it("is dropped by the cron two days later", async () => {
    await countMail(getDb(env.DB), await mailCount(getConfig(env), address(), "verify_email", new Date()));
    const rows = () => count("SELECT count(*) AS n FROM mail_sends");
    const before = await rows();
    expect((await housekeeping(env, new Date(Date.now() + 24 * 3_600_000))).mailSends).toBe(0);
    await housekeeping(env, new Date(Date.now() + 2 * 24 * 3_600_000 + 1000));
    expect(await rows()).toBe(0);
    expect(before).toBeGreaterThan(0);
  });
});

// POST /email's round trips on main, before the budget (measured there): the count adds none.
const ROUND_TRIPS_POST_EMAIL = 5;
