import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { MAIL_ATTEMPTS, retryDelay } from "../src/mail-queue";
import { call, capturingQueue, d1Usage, deliverJobs, expectError, mailbox, PASSWORD, registerUser, type SentMail, uniqueName } from "./helpers";

/**
 * Mail asked for by address goes through a Cloudflare Queue (src/auth/mail/jobs.ts, src/mail-queue.ts):
 * the route validates, spends the per-client limit and queues a job, the same for every address; the
 * consumer does the lookup, the link and the mail, retries a mail the Email Service refused, and mails
 * a job once however often it is delivered.
 */

const address = () => `${uniqueName("queued")}@example.com`;
const ROUTES = [
  ["/password/forgot", "reset_password", "reset-password"],
  ["/email/verify/request", "verify_email", "verify-email"],
] as const;
const count = async (sql: string, ...args: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...args)
    .first<{ n: number }>())!.n;

/** A mail binding that fails its first `failures` sends, then keeps what it is given. */
function flakyMail(failures: number) {
  const sent: SentMail[] = [];
  let calls = 0;
  const EMAIL = {
    send: async (m: SentMail) => {
      if (++calls <= failures) throw new Error("mail service refused");
      sent.push(m);
      return { messageId: `m${sent.length}` };
    },
  } as unknown as SendEmail;
  return { sent, EMAIL, calls: () => calls };
}

describe.each(ROUTES)("%s {email}", (path, kind, action) => {
  it("queues the same job for a known and an unknown address, with no D1 at all and the same answer", async () => {
    const known = address();
    await registerUser({ email: known });
    const answers = [];
    const jobs: unknown[] = [];
    for (const email of [known.toUpperCase(), address()]) {
      const queue = capturingQueue();
      const usage = await d1Usage("POST", path, { body: { email }, bindings: { MAIL_QUEUE: queue.MAIL_QUEUE } });
      expect(usage.n).toBe(0);
      answers.push(usage.res);
      expect(queue.jobs).toHaveLength(1);
      jobs.push(queue.jobs[0]);
    }
    expect(answers.map((a) => `${a.status} ${a.text}`)).toEqual([`202 ${answers[1]!.text}`, `202 ${answers[0]!.text}`]);
    const [a, b] = jobs as Record<string, unknown>[];
    expect(Object.keys(a!).sort()).toEqual(Object.keys(b!).sort());
    expect(a).toMatchObject({ v: 1, kind, email: known, key: expect.any(String) });
    expect(b).toMatchObject({ v: 1, kind, key: expect.any(String) });
    expect(a!.key).not.toBe(b!.key);
  });

  it("the consumer mails a link to a known address and nothing to an unknown one, and acks both", async () => {
    const known = address();
    const reg = await registerUser({ email: known });
    const queue = capturingQueue();
    for (const email of [known, address()]) await call("POST", path, { body: { email }, bindings: { MAIL_QUEUE: queue.MAIL_QUEUE } });
    const box = mailbox();
    const { ids, result } = await deliverJobs(queue.jobs, { EMAIL: box.binding });
    expect(result.explicitAcks).toEqual(ids);
    expect(result.retryMessages).toEqual([]);
    expect(box.sent.map((m) => m.to)).toEqual([known]);
    expect(box.link(known, action)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await count("SELECT count(*) AS n FROM account_tokens WHERE user_id = ? AND purpose = ?", reg.user.id, kind)).toBe(kind === "verify_email" ? 2 : 1); // sign-up's own link too
  });

  it("a mail the service refuses once is retried, then delivered once; a job delivered again makes no second link or mail", async () => {
    const known = address();
    const reg = await registerUser({ email: known });
    const queue = capturingQueue();
    await call("POST", path, { body: { email: known }, bindings: { MAIL_QUEUE: queue.MAIL_QUEUE } });
    const links = () => count("SELECT count(*) AS n FROM account_tokens WHERE user_id = ? AND purpose = ?", reg.user.id, kind);
    const before = kind === "verify_email" ? 1 : 0; // sign-up's link
    const mail = flakyMail(1);
    const first = await deliverJobs(queue.jobs, { EMAIL: mail.EMAIL });
    expect(first.result.retryMessages.map((m) => m.msgId)).toEqual(first.ids);
    expect(mail.sent).toHaveLength(0);
    expect(await links()).toBe(before + 1); // the link is made once, before the mail
    const second = await deliverJobs(queue.jobs, { EMAIL: mail.EMAIL }, 2);
    expect(second.result.explicitAcks).toEqual(second.ids);
    expect(mail.sent.map((m) => m.to)).toEqual([known]);
    // At least once: the same job again (its ack lost) finds its link and its mail sent.
    const again = await deliverJobs(queue.jobs, { EMAIL: mail.EMAIL }, 1);
    expect(again.result.explicitAcks).toEqual(again.ids);
    expect(mail.sent).toHaveLength(1);
    expect(mail.calls()).toBe(2);
    expect(await links()).toBe(before + 1);
    expect(await count("SELECT count(*) AS n FROM mail_sends WHERE id = ? AND sent_at IS NOT NULL", (queue.jobs[0] as { key: string }).key)).toBe(1);
    // The link in the mail is the one stored.
    const token = /#[a-z-]+=([A-Za-z0-9_-]{43})/.exec(mail.sent[0]!.text)![1]!;
    const used =
      kind === "reset_password"
        ? await call("POST", "/password/reset", { body: { token, new_password: `${PASSWORD} again` } })
        : await call("POST", "/email/verify", { body: { token, password: PASSWORD } });
    expect(used.status, used.text).toBe(200);
  });
});

describe("the mail queue's consumer", () => {
  it("backs off 30 s, doubling, and gives up after six attempts, all within a reset link's 30 minutes", () => {
    expect(MAIL_ATTEMPTS).toBe(6);
    const delays = Array.from({ length: MAIL_ATTEMPTS - 1 }, (_, i) => retryDelay(i + 1));
    expect(delays).toEqual([30, 60, 120, 240, 480]);
    expect(delays.reduce((a, b) => a + b)).toBeLessThan(30 * 60);
  });

  it("a job whose link expired before its retry mails nothing, and ends", async () => {
    const known = address();
    await registerUser({ email: known });
    const queue = capturingQueue();
    await call("POST", "/password/forgot", { body: { email: known }, bindings: { MAIL_QUEUE: queue.MAIL_QUEUE } });
    const mail = flakyMail(1);
    await deliverJobs(queue.jobs, { EMAIL: mail.EMAIL });
    await env.DB.prepare("UPDATE account_tokens SET expires_at = ? WHERE email = ? AND purpose = 'reset_password'")
      .bind(Date.now() - 1, known)
      .run();
    const late = await deliverJobs(queue.jobs, { EMAIL: mail.EMAIL }, 5);
    expect(late.result.explicitAcks).toEqual(late.ids);
    expect(mail.sent).toHaveLength(0);
  });

  it("acks and logs a message it cannot read", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const { ids, result } = await deliverJobs([{ v: 2, kind: "reset_password" }, "junk"]);
    expect(result.explicitAcks).toEqual(ids);
    expect(errors.mock.calls.map((c) => String(c[0])).filter((l) => l.includes("mail_job_unreadable"))).toHaveLength(2);
    errors.mockRestore();
  });

  it("a queue that refuses the job: 503 for any address, nothing mailed", async () => {
    const known = address();
    await registerUser({ email: known });
    const MAIL_QUEUE = {
      send: async () => {
        throw new Error("queue unavailable");
      },
    } as unknown as Queue;
    for (const email of [known, address()])
      expectError(await call("POST", "/password/forgot", { body: { email }, bindings: { MAIL_QUEUE } }), 503, "service_unavailable");
  });
});
