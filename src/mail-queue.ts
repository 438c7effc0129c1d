import { audit } from "./audit";
import { isMailJob, type MailJob } from "./auth/mail/jobs";
import { mailVerificationJob } from "./auth/mail/verification";
import { mailSignInJob } from "./auth/mail-sign-in/messages";
import { mailResetLink } from "./auth/mailbox/reclaim";
import { getConfig } from "./config";
import { getDb, getReplicaDb } from "./db/client";
import type { Deps } from "./deps";
import { log } from "./log";

/**
 * The consumer of the mail queue (wrangler.toml [[queues.consumers]]; the producer is
 * auth/mail/jobs.ts): the lookup, link and mail of a request by address, away from its answer.
 *
 * A job whose work throws (the Email Service refused the mail, D1 did not answer, a configuration
 * fault) is retried after 30 s, then 60, 120, 240 and 480: six attempts over about 15 minutes, within
 * a reset link's 30. After the sixth it ends with `mail_failed` in the audit trail. Delivery is at
 * least once; a job delivered again makes no second link and sends no second mail (auth/mail/jobs.ts).
 */

export const MAIL_ATTEMPTS = 6;
const FIRST_RETRY_SECONDS = 30;

/** Seconds before the next attempt, after `attempts` (counting from 1). */
export const retryDelay = (attempts: number) => FIRST_RETRY_SECONDS * 2 ** (attempts - 1);

const WORK = { reset_password: mailResetLink, verify_email: mailVerificationJob, mail_sign_in: mailSignInJob } satisfies Record<
  MailJob["kind"],
  (deps: Deps, job: MailJob) => Promise<void>
>;

/** What a job's work needs: the bindings, and the asking request's id for its log lines and audit rows. */
function depsFor(env: Env, job: MailJob): Deps {
  return {
    db: getDb(env.DB),
    replica: () => getReplicaDb(env.DB),
    kv: env.REVOKED,
    config: getConfig(env),
    requestId: job.request_id,
    mailer: env.EMAIL,
  };
}

export async function consumeMail(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  // One job at a time: a batch is a handful, and each is a round trip and a mail.
  for (const message of batch.messages) {
    const job = message.body;
    if (!isMailJob(job)) {
      log("mail_job_unreadable", { queue: batch.queue, message_id: message.id }, "error");
      message.ack();
      continue;
    }
    const about = { request_id: job.request_id, kind: job.kind, attempt: message.attempts };
    try {
      await WORK[job.kind](depsFor(env, job), job);
      message.ack();
    } catch (err) {
      const error = (err as Error).name;
      if (message.attempts < MAIL_ATTEMPTS) {
        log("mail_retry", { ...about, error, retry_in: retryDelay(message.attempts) }, "warn");
        message.retry({ delaySeconds: retryDelay(message.attempts) });
      } else {
        // The last attempt: recorded by name (a service's message may quote the address), and ended.
        await audit({ db: getDb(env.DB), requestId: job.request_id }, "mail_failed", { purpose: job.kind, attempts: message.attempts, error });
        message.ack();
      }
    }
  }
}
