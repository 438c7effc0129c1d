import type { AuditContext } from "./audit";
import type { Config } from "./config";
import type { Db } from "./db/client";
import { log } from "./log";

/** A queued request for mail by address (auth/mail/jobs.ts makes it, src/mail-queue.ts does it). */
export interface MailJob {
  v: 1;
  kind: "reset_password" | "verify_email" | "mail_sign_in";
  /** Random: the job's identity across deliveries (its link's token and its mail count derive from it). */
  key: string;
  /** The address asked for, lower-cased. */
  email: string;
  /** The asking request's id, for the logs and the audit trail. */
  request_id?: string;
}

/** What the auth flows need from a request. They know nothing of HTTP; routes/deps.ts builds this per request. */
export interface Deps extends AuditContext {
  db: Db;
  /** A client for reads that may lag a moment (db/client.ts getReplicaDb), made when called. */
  replica: () => Db;
  kv: KVNamespace;
  config: Config;
  userAgent?: string;
  /** The per-account login budget at the edge; throws 429 when `key` has used it. Absent in unit tests. */
  limitAccount?: (key: string) => Promise<void>;
  /** The mail budget at the edge (per account, or per client), the same way. */
  limitMail?: (key: string) => Promise<void>;
  /** Cloudflare Email Service (src/mail.ts is the only user). */
  mailer?: SendEmail;
  /** The queue of mail asked for by address (auth/mail/jobs.ts; consumed by src/mail-queue.ts). */
  mailQueue?: Queue<MailJob>;
  /**
   * Cookie mode: the refresh token the browser sent with a sign-in, whose cookie the sign-in replaces:
   * that session ends with the sign-in (auth/core/replaced-session.ts). Set by the sign-in routes only.
   */
  replacing?: string;
  /** Keeps a task running after the answer (waitUntil), where the request has an execution context. */
  defer?: (task: Promise<unknown>) => void;
}

/**
 * Runs `task` after the answer where the request has an execution context (and before it where it
 * has none): work whose time or outcome must not show in the answer. A failure is logged by name only.
 */
export async function afterAnswer(deps: Deps, what: string, task: () => Promise<void>): Promise<void> {
  const run = task().catch((err: Error) => log("deferred_failed", { request_id: deps.requestId, what, error: err.name }, "error"));
  if (deps.defer) deps.defer(run);
  else await run;
}
