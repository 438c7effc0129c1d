import type { SQL } from "drizzle-orm";
import type { Config } from "../../config";
import { ConfigError } from "../../config";
import { markMailSent } from "../../db/mail-sends";
import type { Deps, MailJob } from "../../deps";
import { toBase64Url } from "../../encoding";
import { log } from "../../log";
import { deliver, type Mail } from "../../mail";
import { Refusal } from "../core/errors";
import { serverHmacKey } from "../core/hkdf";
import { issueWithinBudget, mailCount } from "./budget";
import { LIMITS, newLink, requireAppUrl } from "./links";

/**
 * Mail asked for by address, without signing in (a reset, a verification): the request queues a
 * job, the same for every address, and answers; the queue's consumer (src/mail-queue.ts) does the
 * lookup, the link and the mail, away from the answer. Delivery is at least once, so a job carries a
 * random key: the link's token is derived from it (an HMAC under a key from the signing secret, so
 * the queue holds no token), and a job delivered again finds its link and its count, and mails once.
 */

export type { MailJob };

type MailJobKind = MailJob["kind"];

export const isMailJob = (body: unknown): body is MailJob => {
  const job = body as Partial<MailJob> | null;
  return (
    typeof job === "object" &&
    job !== null &&
    job.v === 1 &&
    (job.kind === "reset_password" || job.kind === "verify_email" || job.kind === "mail_sign_in") &&
    typeof job.key === "string" &&
    job.key.length >= 16 &&
    typeof job.email === "string"
  );
};

/** Queues the job: the request's only work besides validating (and its per-client limit), whatever the address. */
export async function queueMail(deps: Deps, kind: MailJobKind, email: string): Promise<void> {
  if (!deps.mailQueue) throw new ConfigError(["MAIL_QUEUE: the queue producer binding is missing (wrangler.toml [[queues.producers]])"]);
  const job: MailJob = { v: 1, kind, key: crypto.randomUUID(), email: email.toLowerCase(), request_id: deps.requestId };
  try {
    await deps.mailQueue.send(job, { contentType: "json" });
  } catch (err) {
    log("mail_queue_failed", { request_id: deps.requestId, kind, error: (err as Error).name }, "error");
    throw new Refusal("service_unavailable", "The request could not be queued; retry it in a moment");
  }
}

const encoder = new TextEncoder();
const jobKey = (config: Config) => serverHmacKey(config, "edge-auth-api mail job link v1");

/** The link token of a job: the same on every delivery, and nobody without the Worker's secret can make it. */
export async function jobToken(config: Config, job: MailJob): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await jobKey(config), encoder.encode(`${job.kind}:${job.key}`));
  return toBase64Url(new Uint8Array(mac));
}

/**
 * A job's work, for the account `who` selects: its link (within LIMITS and the address's budget,
 * made once), then its mail, unless that went already. Throws when the mail could not be sent (the
 * consumer retries the job; the link stays as it was made). Nothing for an address without such an
 * account: the same job, done alike, up to the lookup.
 */
export async function runLinkJob(deps: Deps, job: MailJob, who: SQL, mail: (to: string, token: string) => Mail): Promise<void> {
  requireAppUrl(deps.config);
  if (job.kind === "mail_sign_in") throw new Error("runLinkJob: a mail sign-in is not a link job (auth/mail-sign-in/)");
  const now = new Date();
  const token = await jobToken(deps.config, job);
  const { row } = await newLink(job.kind, now, {}, token);
  const count = await mailCount(deps.config, job.email, job.kind, now, job.key);
  const link = await issueWithinBudget(deps, who, row, LIMITS[job.kind], count, true);
  if (!link || link.mailedAt) return; // nothing to mail, or mailed by an earlier delivery
  if (!link.usable) {
    log("mail_job_stale", { request_id: deps.requestId, kind: job.kind, user_id: link.userId }, "warn"); // used or expired before a retry
    return;
  }
  await deliver(deps, mail(link.email, token), { user_id: link.userId, purpose: job.kind });
  try {
    await markMailSent(deps.db, job.key, new Date());
  } catch (err) {
    // Sent: the job must end here. A later delivery of the same job, or one running at the same
    // time (at-least-once delivery), could then mail it twice.
    log("mail_sent_unrecorded", { request_id: deps.requestId, kind: job.kind, error: (err as Error).name }, "error");
  }
}
